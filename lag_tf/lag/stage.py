"""One growth stage: probe the pool, select, commit the decision, continue the winner, for the
executor's every growth stage (docs/design.md, "Data flow of a run", steps 6 and 7).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import tensorflow as tf
from absl import logging

from lag_tf import model_dir_store as store
from lag_tf.growth import Pool
from lag_tf.lag.probe import CandidateTrainers
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.probe_cost import probe_budget, stage_charge, step_and_eval_flops
from lag_tf.lag.selector import (ProbeResult, SelectorRule, halving_rungs, halving_survivors,
                                 race_look, race_segments, select)
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import forward_share
from lag_tf.records import CandidateOutcome, DecisionRecord
from lag_tf.training.trainer import Trainer


def probe_and_commit(stage: int, pool: Pool, targets: Dict[str, TransformerConfig],
                     trainers: CandidateTrainers, model_dir: str, stage_dir: str,
                     rule: SelectorRule, config_hash: str, chief: bool) -> DecisionRecord:
  """Returns the committed decision record of `stage` (probing first if there is none).

  `trainers` holds the stage's growth point, data, strategy, probe schedule and steps after
  growth, and one compiled engine per target shape for all candidates and rungs; pass the same
  one to `continue_winner` to continue the winner on it too.
  """
  record = store.read_decision(model_dir, stage)
  if record is not None:
    logging.info("Stage %d: decision already committed (%s); not probing again.", stage,
                 record.winner)
    for name, outcome in record.candidates.items():  # Probes done: the run's progress.
      trainers.run_progress.hold(store.candidate_dir(stage_dir, name), outcome.probe_flops)
    _forgo_uncharged(record, rule, targets, trainers)
    return record
  point, schedule = trainers.point, trainers.schedule
  names = list(pool.names)
  directories = {n: store.candidate_dir(stage_dir, n) for n in names}
  budget = _budget(rule, targets, trainers, stage)
  results: Dict[str, ProbeResult] = {}
  race: Dict[str, object] = {}
  tokens = {"per_step": point.tokens_per_step}

  def probe(name: str, until: int, label: str) -> None:
    with trainers.run_progress.phase(f"{stage_text(stage)}probe {name} ({label})"):
      results[name], tokens["per_step"] = trainers.probe(pool[name], targets[name],
                                                         directories[name], until)

  if rule.rule == "race":
    race = _race(stage, names, rule, schedule, budget, probe, results,
                 point.tokens_per_step)
  else:
    rungs = (halving_rungs(rule, schedule.probe_steps, len(names))
             if rule.rule == "successive_halving" else [schedule.probe_steps])
    alive = names
    for index, rung in enumerate(rungs):
      logging.info("Stage %d: probing %d candidates to probe step %d: %s", stage, len(alive),
                   rung, ", ".join(alive))
      rung_text = f", rung {index + 1} of {len(rungs)}" if len(rungs) > 1 else ""
      for number, name in enumerate(alive, 1):
        probe(name, rung, f"{number} of {len(alive)}{rung_text}")
      if index < len(rungs) - 1:
        alive = halving_survivors(rule, {n: results[n] for n in alive}, rung)
  decision = select(rule, results)
  record = decision_record(stage, pool, targets, results, decision, schedule, point,
                           config_hash, tokens["per_step"], budget, race)
  if chief:
    store.commit_decision(model_dir, record)
  logging.info("Stage %d: committed %s (rule %s).", stage, decision.winner, rule.rule)
  _forgo_uncharged(record, rule, targets, trainers)
  return record


def _budget(rule: SelectorRule, targets: Dict[str, TransformerConfig],
            trainers: CandidateTrainers, stage: int) -> Optional[float]:
  point = trainers.point
  return probe_budget(rule, trainers.schedule, targets, trainers.steps_after_growth,
                      point.tokens_per_step, point.eval_tokens, point.mask_probability,
                      where=f"stage {stage}")


def _forgo_uncharged(record: DecisionRecord, rule: SelectorRule,
                     targets: Dict[str, TransformerConfig], trainers: CandidateTrainers) -> None:
  """The plan charges a race its costliest end (probe_cost.stage_charge); the training it
  charged beyond what this stage trains (candidates left the race, or it stopped at another
  look) leaves the run's progress plan, so the run ends at 100%."""
  if not record.race:
    return
  point = trainers.point
  per_step, per_eval = step_and_eval_flops(targets, point.tokens_per_step, point.eval_tokens,
                                           point.mask_probability)
  charge = stage_charge(rule, trainers.schedule, len(targets), trainers.steps_after_growth,
                        per_step, per_eval, _budget(rule, targets, trainers, record.stage))
  winner = record.candidates[record.winner]
  trained = (sum(c.probe_flops for c in record.candidates.values())
             + (trainers.steps_after_growth - winner.probe_steps_trained)
             * record.tokens_per_step * winner.flops_per_token)
  trainers.run_progress.forgo(charge.training_flops(per_step) - trained)


def probe_flops(result: ProbeResult, tokens_per_step: int):
  """(training FLOPs, evaluation FLOPs) a candidate's probe has spent so far, at its result's
  FLOPs per token (models/flops; an evaluation is a forward pass, a third)."""
  train = result.steps_trained * tokens_per_step * result.flops_per_token
  return train, result.evals * result.eval_tokens * forward_share(result.flops_per_token)


def _race(stage: int, names, rule: SelectorRule, schedule: ProbeSchedule,
          budget: Optional[float], probe, results: Dict[str, ProbeResult],
          tokens_per_step: int) -> dict:
  """Runs the race (selector.race_look after each segment); returns how it ran, for the
  decision record. Deterministic given the candidates' metrics, so a killed race replays its
  looks from the candidates' checkpoints and metrics and reaches the same decision."""
  looks = race_segments(rule, schedule.probe_steps, schedule.rewarmup_steps)
  alive, left, history, stopped, previous = list(names), {}, [], "probe_steps", 0
  for index, step in enumerate(looks):
    if budget is not None and index:
      spent = sum(sum(probe_flops(results[n], tokens_per_step)) for n in results)
      nxt = sum((step - previous) * tokens_per_step * results[n].flops_per_token
                + 2 * results[n].eval_tokens * forward_share(results[n].flops_per_token)
                for n in alive)
      if spent + nxt > budget:
        stopped = "budget"
        break
    logging.info("Stage %d: race look %d of %d, %d candidates to probe step %d: %s", stage,
                 index + 1, len(looks), len(alive), step, ", ".join(alive))
    for number, name in enumerate(alive, 1):
      probe(name, step, f"{number} of {len(alive)}, race look {index + 1} of {len(looks)}")
    look = race_look(rule, results, alive, step)
    for name, why in look.dropped.items():
      left[name] = {"step": step, "why": why}
    history.append({"step": step, "leader": look.leader, "survivors": list(look.survivors)})
    alive, previous = look.survivors, step
    if look.stopped:
      stopped = look.stopped
      break
  logging.info("Stage %d: race stopped (%s) at probe step %d with %s", stage, stopped, previous,
               ", ".join(alive))
  return {"stopped": stopped, "at_step": previous, "survivors": alive, "left": left,
          "looks": history, "segment_steps": rule.race_segment_steps, "z": rule.race_z,
          "delta": rule.race_delta}


def decision_record(stage, pool, targets, results, decision, schedule, point, config_hash,
                    tokens_per_step: int, budget: Optional[float] = None,
                    race: Optional[dict] = None) -> DecisionRecord:
  """The committed record: every candidate's eval losses, status, score and probe cost."""
  candidates = {}
  race = race or {}
  for name in pool.names:
    result = results[name]
    train_flops, eval_flops = probe_flops(result, tokens_per_step)
    candidates[name] = CandidateOutcome(
        probe_evals=result.evals, probe_eval_flops=eval_flops,
        left_race_at=race.get("left", {}).get(name, {}).get("step"),
        status=("failed" if name in decision.failed else
                "eliminated" if name in decision.eliminated else "ok"),
        failed=decision.failed.get(name), eval_losses=dict(sorted(result.eval_losses.items())),
        score=decision.scores.get(name), params=result.params,
        flops_per_token=result.flops_per_token, probe_steps_trained=result.steps_trained,
        probe_flops=train_flops, function_preserving=pool[name].function_preserving,
        candidate=pool[name].to_dict(), config=targets[name].to_dict())
  return DecisionRecord(
      stage=stage, rule=decision.rule, winner=decision.winner, ranking=list(decision.ranking),
      tied_with=list(decision.tied_with), tie_broken_by_cost=decision.tie_broken_by_cost,
      score_steps=list(decision.score_steps), candidates=candidates,
      probe_steps=schedule.probe_steps, eval_steps=list(schedule.probe_eval_steps()),
      growth_step=point.step, growth_examples_seen=point.examples_seen,
      tokens_per_step=tokens_per_step,
      probe_cost_steps=sum(c.probe_steps_trained for c in candidates.values()),
      probe_cost_flops=sum(c.probe_flops for c in candidates.values()),
      # A pool of one decides nothing: its probe's evaluations are logging evaluations.
      probe_eval_flops=(sum(c.probe_eval_flops for c in candidates.values())
                        if len(candidates) > 1 else 0.0),
      probe_budget_flops=budget, race=race, config_hash=config_hash)


def continue_winner(record: DecisionRecord, pool: Pool, targets: Dict[str, TransformerConfig],
                    trainers: CandidateTrainers, stage_dir: str) -> Trainer:
  """Trains the committed winner from its own probe checkpoint to the end of the stage."""
  winner = record.winner
  trainer = trainers.trainer(pool[winner], targets[winner], store.candidate_dir(stage_dir, winner))
  until = trainers.point.step + trainers.steps_after_growth
  if trainer.global_step < until:
    with trainers.run_progress.phase(f"{stage_text(record.stage)}continue {winner}"):
      trainer.train(until_step=until)
  return trainer


def stage_text(stage: int) -> str:
  """The prefix of a stage's progress and plan names: gradual stages count from 1; a one-shot
  LAG run is stage 0."""
  return f"stage {stage}: " if stage else ""


def delete_loser_checkpoints(record: DecisionRecord, stage_dir: str) -> List[str]:
  """Removes the losers' checkpoint dirs (their metrics stay); returns what was removed."""
  removed = []
  for name in record.candidates:
    path = store.checkpoint_dir(store.candidate_dir(stage_dir, name))
    if name != record.winner and tf.io.gfile.exists(path):
      tf.io.gfile.rmtree(path)
      removed.append(path)
  return removed
