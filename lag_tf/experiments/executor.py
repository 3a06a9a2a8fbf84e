"""The stage loop: runs any RunSchedule (lag_tf.experiments.schedule), resuming what a killed
run left (docs/design.md, "Data flow of a run", steps 3 to 7). A growth run's base may be
imported (base_model.source); the compute by phase comes from the committed decisions
(schedule.compute_by_phase), in lag_tf.plan's convention.
Model dir: docs/design.md, "The model dir"; summary.md is lag_tf.experiments.summaries'.
"""

from __future__ import annotations

import contextlib

import gin
from absl import logging

from lag_tf import model_dir_store as store
from lag_tf.analysis import summary as summary_lib
from lag_tf.experiments import summaries
from lag_tf.experiments.schedule import (BaseStage, RunSchedule, baseline_steps,
                                         compute_by_phase, scratch_stage)
from lag_tf.growth import validate_pool
from lag_tf.interop.source import restore_or_train_base
from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
from lag_tf.lag.probe_cost import probe_budget
from lag_tf.lag.stage import continue_winner, delete_loser_checkpoints, probe_and_commit
from lag_tf.models import count_parameters
from lag_tf.records import BaselineRecord, config_hash
from lag_tf.training.progress import RunProgress
from lag_tf.training.schedules import WarmupDecaySchedule
from lag_tf.training.trainer import Trainer, make_optimizer


def execute(schedule: RunSchedule, data, strategy, model_dir: str,
            run_progress: RunProgress = None) -> dict:
  """Runs `schedule` in `model_dir` on `data`; returns the run's result (what summary.md says)
  and writes summary.md from the chief."""
  run_progress = run_progress or RunProgress()
  base = schedule.base
  trainer = _trainer(base, data, strategy, model_dir, run_progress)
  if not schedule.stages:
    return _train_alone(schedule, trainer, model_dir)
  for stage in schedule.stages:  # Every stage's probe budget, before anything trains.
    probe_budget(stage.rule, stage.probe, stage.targets, stage.steps, trainer.tokens_per_step,
                 trainer.eval_batches * trainer.tokens_per_step, trainer.mask_probability,
                 where=stage.where)
  with run_progress.phase(base.progress_label) if base.progress_label else (
      contextlib.nullcontext()):
    restore_or_train_base(trainer, base.steps)
  point, chief = GrowthPoint.from_trainer(trainer), trainer.is_chief
  base_steps = point.step
  del trainer
  fingerprint = config_hash(gin.config_str())
  records, tables, final = [], [], None
  for stage in schedule.stages:
    if validate_pool(stage.pool, point.config) != stage.targets:
      raise RuntimeError(f"{stage.where}: the model at growth is not the schedule's")
    stage_dir = store.stage_dir(model_dir, stage.index)
    trainers = CandidateTrainers(point, data, strategy, stage.probe, stage.steps, run_progress)
    record = probe_and_commit(stage.index, stage.pool, stage.targets, trainers, model_dir,
                              stage_dir, stage.rule, fingerprint, chief)
    records.append(record)
    tables.append(summaries.summary_table(record))
    print(tables[-1], flush=True)
    if not schedule.keep_loser_checkpoints and chief:
      delete_loser_checkpoints(record, stage_dir)
    winner = continue_winner(record, stage.pool, stage.targets, trainers, stage_dir)
    point = GrowthPoint.from_trainer(winner)
    if stage is schedule.stages[-1]:
      final = winner.evaluate()
    del winner, trainers  # The next stage (or the baseline) builds models of its own.
  flops = compute_by_phase(schedule, base_steps, records, point.mask_probability)
  result = {"final_eval_loss": final.eval_loss, "steps": point.step, "flops": flops,
            "winner": records[-1].winner, "winners": [r.winner for r in records],
            "probe_cost_flops": sum(r.probe_cost_flops for r in records),
            "probe_eval_flops": sum(r.probe_eval_flops for r in records)}
  if schedule.mode:
    result["mode"] = schedule.mode
  baseline = None
  if schedule.scratch_baseline:  # Same optimizer, batch and schedule family, its own length.
    steps = baseline_steps(flops["total"], schedule.final_config, point.tokens_per_step,
                           point.mask_probability)
    baseline_trainer = _trainer(scratch_stage(schedule.final_config, steps), data, strategy,
                                store.scratch_dir(model_dir), run_progress)
    scratch = baseline_trainer.resume() or baseline_trainer.evaluate()
    result["scratch_eval_loss"] = scratch.eval_loss
    if chief:  # What the verdict reads besides the evals (python -m lag_tf.analyze too).
      store.write_baseline(model_dir, BaselineRecord(steps, schedule.seed_spread))
    baseline = summary_lib.scratch_comparison(
        final.eval_loss, final.eval_batch_losses, scratch.eval_loss,
        scratch.eval_batch_losses, steps, schedule.seed_spread)
  if chief:
    summaries.write(model_dir, schedule, result, tables, baseline)
  logging.info("Done: %s", result)
  return result


def _trainer(stage: BaseStage, data, strategy, model_dir: str,
             run_progress: RunProgress) -> Trainer:
  """The Trainer of a model trained from its config (a base, a model from scratch), built in
  its role scope (gin/runs/common.gin) so scoped bindings reach it; a `train` run's steps and
  name are gin's. The one path every model trained from scratch takes."""
  named = {k: v for k, v in (("train_steps", stage.steps), ("name", stage.name)) if v is not None}
  if stage.own_schedule:
    steps = stage.steps
    named["optimizer_fn"] = lambda: make_optimizer(WarmupDecaySchedule(total_steps=steps))
  with gin.config_scope(stage.scope) if stage.scope else contextlib.nullcontext():
    return Trainer(stage.config, data, strategy, model_dir, run_progress=run_progress, **named)


def _train_alone(schedule: RunSchedule, trainer: Trainer, model_dir: str) -> dict:
  """A schedule without growth: the base model trained (or resumed) to its steps."""
  final = trainer.resume() or trainer.evaluate()
  initial = [r for r in store.read_metrics(trainer.metrics.path)
             if r.step == 0 and r.eval_loss is not None]
  # Training FLOPs as lag_tf.plan counts them (its evaluations are reported apart).
  flops = trainer.global_step * trainer.tokens_per_step * trainer.flops_per_token
  result = {"params": count_parameters(schedule.base.config), "steps": trainer.global_step,
            "final_eval_loss": final.eval_loss,
            "first_eval_loss": initial[0].eval_loss if initial else None, "flops": flops}
  if schedule.mode:
    result["mode"] = schedule.mode
  if trainer.is_chief:
    summaries.write(model_dir, schedule, result, [], None)
  logging.info("Done: %s", result)
  return result
