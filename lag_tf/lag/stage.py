"""One growth stage: probe the pool, select, commit the decision, continue the winner.

Used by the `lag` experiment (one stage) and by adaptive gradual stacking (one per stage).
A committed decision is final: a restarted job reads it and never probes that stage again.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import tensorflow as tf
from absl import logging

from lag_tf.growth import Pool
from lag_tf.lag import decisions
from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import (ProbeResult, SelectorRule, halving_rungs, halving_survivors,
                                 select)
from lag_tf.models import TransformerConfig
from lag_tf.records import CandidateOutcome, DecisionRecord
from lag_tf.training import progress
from lag_tf.training.trainer import Trainer


def probe_and_commit(stage: int, pool: Pool, targets: Dict[str, TransformerConfig],
                     point: GrowthPoint, data, strategy, model_dir: str, stage_dir: str,
                     schedule: ProbeSchedule, rule: SelectorRule, steps_after_growth: int,
                     config_hash: str, chief: bool,
                     trainers: Optional[CandidateTrainers] = None) -> DecisionRecord:
  """Returns the committed decision record of `stage` (probing first if there is none).

  `trainers` (built from the same point, data, strategy, schedule and steps_after_growth when
  not given) builds one compiled Trainer per target shape for all candidates and rungs; pass
  the same one to `continue_winner` to continue the winner on it too.
  """
  existing = decisions.read_decision(model_dir, stage)
  if existing is not None:
    record = DecisionRecord.from_json(existing, stage)
    logging.info("Stage %d: decision already committed (%s); not probing again.", stage,
                 record.winner)
    for name, outcome in record.candidates.items():  # Probes done: the run's progress.
      progress.RUN.hold(os.path.join(stage_dir, "candidates", name), outcome.probe_flops)
    return record
  trainers = trainers or CandidateTrainers(point, data, strategy, schedule, steps_after_growth)
  names = list(pool.names)
  directories = {n: os.path.join(stage_dir, "candidates", n) for n in names}
  rungs = (halving_rungs(rule, schedule.probe_steps, len(names))
           if rule.rule == "successive_halving" else [schedule.probe_steps])
  results: Dict[str, ProbeResult] = {}
  tokens_per_step = 0
  alive = names
  for index, rung in enumerate(rungs):
    logging.info("Stage %d: probing %d candidates to probe step %d: %s", stage, len(alive),
                 rung, ", ".join(alive))
    rung_text = f", rung {index + 1} of {len(rungs)}" if len(rungs) > 1 else ""
    for number, name in enumerate(alive, 1):
      with progress.phase(f"{_stage_text(stage)}probe {name} ({number} of {len(alive)}"
                          f"{rung_text})"):
        results[name], tokens_per_step = trainers.probe(pool[name], targets[name],
                                                        directories[name], rung)
    if index < len(rungs) - 1:
      alive = halving_survivors(rule, {n: results[n] for n in alive}, rung)
  decision = select(rule, results)
  record = decision_record(stage, pool, targets, results, decision, schedule, point,
                           config_hash, tokens_per_step)
  if chief:
    decisions.commit_decision(model_dir, stage, record.to_json())
  logging.info("Stage %d: committed %s (rule %s).", stage, decision.winner, rule.rule)
  return record


def decision_record(stage, pool, targets, results, decision, schedule, point, config_hash,
                    tokens_per_step: int) -> DecisionRecord:
  """The committed record: every candidate's eval losses, status, score and probe cost."""
  candidates = {}
  for name in pool.names:
    result = results[name]
    steps = result.steps_trained
    candidates[name] = CandidateOutcome(
        status=("failed" if name in decision.failed else
                "eliminated" if name in decision.eliminated else "ok"),
        failed=decision.failed.get(name), eval_losses=dict(sorted(result.eval_losses.items())),
        score=decision.scores.get(name), params=result.params,
        flops_per_token=result.flops_per_token, probe_steps_trained=steps,
        probe_flops=steps * tokens_per_step * result.flops_per_token,
        function_preserving=pool[name].function_preserving,
        candidate=pool[name].to_dict(), config=targets[name].to_dict())
  return DecisionRecord(
      stage=stage, rule=decision.rule, winner=decision.winner, ranking=list(decision.ranking),
      tied_with=list(decision.tied_with), tie_broken_by_cost=decision.tie_broken_by_cost,
      score_steps=list(decision.score_steps), candidates=candidates,
      probe_steps=schedule.probe_steps, eval_steps=list(schedule.probe_eval_steps()),
      growth_step=point.step, growth_examples_seen=point.examples_seen,
      tokens_per_step=tokens_per_step,
      probe_cost_steps=sum(c.probe_steps_trained for c in candidates.values()),
      probe_cost_flops=sum(c.probe_flops for c in candidates.values()), config_hash=config_hash)


def continue_winner(record: DecisionRecord, pool: Pool, targets: Dict[str, TransformerConfig],
                    point: GrowthPoint, data, strategy, stage_dir: str,
                    schedule: ProbeSchedule, steps_after_growth: int,
                    trainers: Optional[CandidateTrainers] = None) -> Trainer:
  """Trains the committed winner from its own probe checkpoint to the end of the stage."""
  winner = record.winner
  trainers = trainers or CandidateTrainers(point, data, strategy, schedule, steps_after_growth)
  trainer = trainers.trainer(pool[winner], targets[winner],
                             os.path.join(stage_dir, "candidates", winner))
  until = point.step + steps_after_growth
  if trainer.global_step < until:
    with progress.phase(f"{_stage_text(record.stage)}continue {winner}"):
      trainer.train(until_step=until)
  return trainer


def _stage_text(stage: int) -> str:
  """Progress label prefix: gradual stages count from 1; a one-shot LAG run is stage 0."""
  return f"stage {stage}: " if stage else ""


def delete_loser_checkpoints(record: DecisionRecord, stage_dir: str) -> List[str]:
  """Removes the losers' checkpoint dirs (their metrics stay); returns what was removed."""
  removed = []
  for name in record.candidates:
    path = os.path.join(stage_dir, "candidates", name, "ckpt")
    if name != record.winner and tf.io.gfile.exists(path):
      tf.io.gfile.rmtree(path)
      removed.append(path)
  return removed


def summary_table(record: DecisionRecord) -> str:
  """Markdown table: candidate, status, params, eval loss at 0 and at k, probe cost."""
  k = record.probe_steps
  tie = (f" (tie broken by cost among {', '.join(record.tied_with)})"
         if record.tie_broken_by_cost else "")
  lines = [f"stage {record.stage} — rule `{record.rule}`, probe k={k} steps, winner "
           f"**{record.winner}**{tie}", "",
           "| candidate | status | params | loss@0 | loss@k | probe GFLOPs | preserving |",
           "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
  for name in record.ranking:
    c = record.candidates[name]
    losses = c.eval_losses
    at_zero = _fmt(losses.get(0))
    at_k = _fmt(losses.get(k)) if k in losses else (_fmt(losses[max(losses)]) + "*"
                                                    if losses else "-")
    mark = " ←" if name == record.winner else ""
    lines.append(f"| {name}{mark} | {c.status} | {c.params:,} | {at_zero} | {at_k} | "
                 f"{c.probe_flops / 1e9:.1f} | {'yes' if c.function_preserving else 'no'} |")
  lines.append("")
  lines.append(f"probe cost: {record.probe_cost_steps} candidate-steps, "
               f"{record.probe_cost_flops / 1e9:.1f} GFLOPs"
               + ("; * = eliminated early (loss at its last probe step)"
                  if any(c.status == "eliminated" for c in record.candidates.values())
                  else ""))
  return "\n".join(lines)


def _fmt(value: Optional[float]) -> str:
  return "-" if value is None else f"{float(value):.4f}"
