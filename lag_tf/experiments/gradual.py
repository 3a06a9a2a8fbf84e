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

import dataclasses
import os

import gin
from absl import logging

from lag_tf import atomic_file
from lag_tf.data import LanguageModelingData
from lag_tf.growth import validate_pool
from lag_tf.interop.source import restore_or_train_base
from lag_tf.lag import decisions
from lag_tf.lag.gradual import StagePoolTemplate, StageSchedule, stage_pool
from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import SelectorRule
from lag_tf.lag.stage import (continue_winner, delete_loser_checkpoints, probe_and_commit,
                              probe_budget,
                              summary_table)
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import training_flops_per_token
from lag_tf.training import progress
from lag_tf.training.trainer import Trainer

MODES = ("adaptive", "gradual_stacking", "midas", "scratch")


def scratch_steps(stages: StageSchedule, base_config: TransformerConfig) -> int:
  """Steps of the final-size model that cost what one gradual run's training costs."""
  budget = sum(steps * training_flops_per_token(base_config.replace(num_layers=layers))
               for steps, layers in zip(stages.steps(), stages.stage_layers))
  final = base_config.replace(num_layers=stages.stage_layers[-1])
  return max(1, int(budget // training_flops_per_token(final)))


def template_for_mode(mode: str, template: StagePoolTemplate) -> StagePoolTemplate:
  """The stage pool of `mode`: gradual stacking copies the top block and MIDAS the middle one
  (neither zero-initializes); adaptive and scratch keep `template`."""
  if mode == "gradual_stacking":
    return dataclasses.replace(template, positions=("top",), zero_layers=False)
  if mode == "midas":
    return dataclasses.replace(template, positions=("middle",), zero_layers=False)
  return template


@gin.configurable(denylist=["strategy", "model_dir"])
def gradual_experiment(strategy, model_dir: str, mode: str = "adaptive",
                       stages: StageSchedule = None, template: StagePoolTemplate = None,
                       schedule: ProbeSchedule = None, rule: SelectorRule = None,
                       keep_loser_checkpoints: bool = True) -> dict:
  if mode not in MODES:
    raise ValueError(f"gradual_experiment.mode={mode!r}: expected one of {MODES}")
  stages = stages or StageSchedule()
  template = template_for_mode(mode, template or StagePoolTemplate())
  schedule = schedule or ProbeSchedule()
  rule = rule or SelectorRule()
  base_config = TransformerConfig()
  steps = stages.steps()
  if base_config.num_layers != stages.stage_layers[0]:
    raise ValueError(f"StageSchedule.stage_layers starts at {stages.stage_layers[0]} layers but "
                     f"the model has num_layers={base_config.num_layers}")
  if mode != "scratch" and schedule.probe_steps > min(steps[1:]):
    raise ValueError(f"ProbeSchedule.probe_steps={schedule.probe_steps} is longer than the "
                     f"shortest growth stage ({min(steps[1:])} steps)")
  # Every stage's pool is checked before any training.
  layers = stages.stage_layers
  pools = [None] + [stage_pool(template, layers[i - 1], layers[i], i)
                    for i in range(1, len(layers))]
  stage_configs, stage_targets = [base_config], [None]
  for i in range(1, len(layers)):
    try:
      targets = validate_pool(pools[i], stage_configs[-1])
    except ValueError as error:
      raise ValueError(f"stage {i}: invalid growth pool: {error}") from None
    stage_configs.append(next(iter(targets.values())))
    stage_targets.append(targets)
  data = LanguageModelingData()

  if mode == "scratch":
    final_config = base_config.replace(num_layers=layers[-1])
    with gin.config_scope("scratch"):  # The role scope (gin/runs/common.gin).
      trainer = Trainer(final_config, data, strategy, model_dir,
                        train_steps=scratch_steps(stages, base_config), name="scratch")
    result = trainer.resume() or trainer.evaluate()
    summary = {"mode": mode, "final_eval_loss": result["eval_loss"],
               "steps": trainer.global_step}
    _write_summary(model_dir, trainer.is_chief, summary, [])
    return summary

  with gin.config_scope("base"):  # The role scope (gin/runs/common.gin).
    base = Trainer(base_config, data, strategy, model_dir, train_steps=steps[0], name="stage-0")
  for i in range(1, len(layers)):  # Every stage's probe budget, before anything trains.
    probe_budget(rule, schedule, stage_targets[i], steps[i], base.tokens_per_step,
                 base.eval_batches * base.tokens_per_step, where=f"stage {i}")
  with progress.phase(f"stage 0 of {len(layers) - 1} (base)"):
    restore_or_train_base(base, steps[0])
  point, chief = GrowthPoint.from_trainer(base), base.is_chief
  del base
  config_hash = decisions.config_hash(gin.config_str())
  records, final = [], None
  for i in range(1, len(layers)):
    targets = validate_pool(pools[i], point.config)
    stage_dir = os.path.join(model_dir, f"stage-{i}")
    # One compiled engine per target shape for this stage's candidates and its winner.
    trainers = CandidateTrainers(point, data, strategy, schedule, steps[i])
    record = probe_and_commit(i, pools[i], targets, trainers, model_dir, stage_dir, rule,
                              config_hash, chief)
    records.append(record)
    print(summary_table(record), flush=True)
    if not keep_loser_checkpoints and chief:
      delete_loser_checkpoints(record, stage_dir)
    winner = continue_winner(record, pools[i], targets, trainers, stage_dir)
    point = GrowthPoint.from_trainer(winner)
    if i == len(layers) - 1:
      final = winner.evaluate()
    del winner, trainers
  summary = {"mode": mode, "winners": [r.winner for r in records],
             "final_eval_loss": final["eval_loss"], "steps": point.step,
             "probe_cost_flops": sum(r.probe_cost_flops for r in records),
             "probe_eval_flops": sum(r.probe_eval_flops for r in records)}
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
  atomic_file.write_text(os.path.join(model_dir, "summary.md"), "\n".join(lines) + "\n")
