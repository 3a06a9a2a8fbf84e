"""`gradual`: adaptive gradual stacking and its fixed baselines, on the same machinery.

mode:
  'adaptive'          each stage's pool comes from StagePoolTemplate; LAG commits the best.
  'gradual_stacking'  always copy the top block (one-candidate pool).
  'midas'             always copy the middle block (one-candidate pool).
  'scratch'           the final-size model from scratch, for the same training FLOPs as one
                      gradual run (the sum over stages of steps x FLOPs per step; probing
                      overhead excluded, so the baseline is not short-changed).

Model dir: metrics.jsonl + ckpt/ (stage 0), stage-<i>/candidates/<name>/ (stage i),
decisions/stage-<i>.json, summary.md.
"""

from __future__ import annotations

import gin
from absl import logging

from lag_tf import gin_registry
from lag_tf import atomic_file
from lag_tf import model_dir_store as store
from lag_tf.data import LanguageModelingData
from lag_tf.growth import validate_pool
from lag_tf.interop.source import restore_or_train_base
from lag_tf.lag.compute import compute_by_phase, compute_text
from lag_tf.lag.gradual import StagePoolTemplate, StageSchedule, gradual_stages
from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.probe_cost import probe_budget
from lag_tf.lag.selector import SelectorRule
from lag_tf.lag.stage import (continue_winner, delete_loser_checkpoints, probe_and_commit,
                              summary_table)
from lag_tf.models import TransformerConfig
from lag_tf.records import config_hash
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import Trainer, mask_probability_of


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def gradual_experiment(strategy, model_dir: str, mode: str = "adaptive",
                       stages: StageSchedule = None, template: StagePoolTemplate = None,
                       schedule: ProbeSchedule = None, rule: SelectorRule = None,
                       keep_loser_checkpoints: bool = True,
                       run_progress: RunProgress = None) -> dict:
  run_progress = run_progress or RunProgress()
  schedule = schedule or ProbeSchedule()
  rule = rule or SelectorRule()
  data = LanguageModelingData()
  run = gradual_stages(mode, stages or StageSchedule(), template or StagePoolTemplate(),
                       schedule.probe_steps, TransformerConfig(),  # Checked before training.
                       mask_probability_of(TransformerConfig(), data))
  steps, layers, base_config = run.steps, run.layers, run.base_config

  if mode == "scratch":
    with gin.config_scope("scratch"):  # The role scope (gin/runs/common.gin).
      trainer = Trainer(run.scratch_config, data, strategy, model_dir,
                        train_steps=run.scratch_steps, name="scratch",
                        run_progress=run_progress)
    result = trainer.resume() or trainer.evaluate()
    summary = {"mode": mode, "final_eval_loss": result.eval_loss,
               "steps": trainer.global_step}
    _write_summary(model_dir, trainer.is_chief, summary, [])
    return summary

  with gin.config_scope("base"):  # The role scope (gin/runs/common.gin).
    base = Trainer(base_config, data, strategy, model_dir, train_steps=steps[0], name="stage-0",
                   run_progress=run_progress)
  for i in range(1, len(layers)):  # Every stage's probe budget, before anything trains.
    probe_budget(rule, schedule, run.targets[i - 1], steps[i], base.tokens_per_step,
                 base.eval_batches * base.tokens_per_step, base.mask_probability,
                 where=f"stage {i}")
  with run_progress.phase(f"stage 0 of {len(layers) - 1} (base)"):
    restore_or_train_base(base, steps[0])
  point, chief = GrowthPoint.from_trainer(base), base.is_chief
  base_steps = point.step
  del base
  config_fingerprint = config_hash(gin.config_str())
  records, winner_configs, final = [], [], None
  for i in range(1, len(layers)):
    pool = run.pools[i - 1]
    targets = validate_pool(pool, point.config)
    stage_dir = store.stage_dir(model_dir, i)
    # One compiled engine per target shape for this stage's candidates and its winner.
    trainers = CandidateTrainers(point, data, strategy, schedule, steps[i], run_progress)
    record = probe_and_commit(i, pool, targets, trainers, model_dir, stage_dir, rule,
                              config_fingerprint, chief)
    records.append(record)
    winner_configs.append(targets[record.winner])
    print(summary_table(record), flush=True)
    if not keep_loser_checkpoints and chief:
      delete_loser_checkpoints(record, stage_dir)
    winner = continue_winner(record, pool, targets, trainers, stage_dir)
    point = GrowthPoint.from_trainer(winner)
    if i == len(layers) - 1:
      final = winner.evaluate()
    del winner, trainers
  flops = compute_by_phase(base_config, base_steps, records, winner_configs, steps[1:],
                           point.mask_probability)
  summary = {"mode": mode, "winners": [r.winner for r in records],
             "final_eval_loss": final.eval_loss, "steps": point.step,
             "probe_cost_flops": sum(r.probe_cost_flops for r in records),
             "probe_eval_flops": sum(r.probe_eval_flops for r in records), "flops": flops}
  _write_summary(model_dir, chief, summary, records)
  logging.info("Done: %s", summary)
  return summary


def _write_summary(model_dir: str, chief: bool, summary: dict, records) -> None:
  if not chief:
    return
  lines = [f"# gradual summary ({summary['mode']})", ""]
  for record in records:
    lines += [summary_table(record), ""]
  lines.append(f"final eval loss {summary['final_eval_loss']:.4f} after {summary['steps']} steps")
  if records:
    lines.append(f"stage winners: {' -> '.join(summary['winners'])}")
    lines.append(compute_text(summary["flops"]))
  atomic_file.write_text(store.summary_path(model_dir), "\n".join(lines) + "\n")
