"""Dispatch from the gin setting `run_experiment.kind` to an experiment function (what one is:
docs/design.md, "Data flow of a run", step 3), so main.py holds no experiment-specific code;
and the experiments that build a RunSchedule from their gin arguments and hand it to the
executor (`train`, `lag`, `gradual`; experiments.schedule holds their builders).

Model dir: docs/design.md, "The model dir" (scratch/: lag_experiment.scratch_baseline; a
gradual run's stage 0 is the base, in the model dir itself).
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import gin

from lag_tf import gin_registry
from lag_tf.data import LanguageModelingData
from lag_tf.experiments.executor import execute
from lag_tf.experiments.grow import grow_experiment
from lag_tf.experiments.schedule import gradual_schedule, lag_schedule, train_schedule
from lag_tf.experiments.study import study_experiment
from lag_tf.growth import Pool
from lag_tf.lag.gradual import StagePoolTemplate, StageSchedule
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import SelectorRule
from lag_tf.models import TransformerConfig
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import mask_probability_of


def _execute(builder: Callable, strategy, model_dir: str, run_progress: RunProgress,
             *arguments) -> dict:
  """Builds the run's schedule for `TransformerConfig()` on `LanguageModelingData()` (both from
  gin) and runs it."""
  config, data = TransformerConfig(), LanguageModelingData()
  return execute(builder(config, mask_probability_of(config, data), *arguments), data, strategy,
                 model_dir, run_progress)


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def train_experiment(strategy, model_dir: str, run_progress: RunProgress = None) -> dict:
  """`train`: trains `TransformerConfig()` on `LanguageModelingData()` with `Trainer` (all from
  gin) from scratch, or resumes it, and writes a summary (a schedule of its base alone)."""
  return _execute(train_schedule, strategy, model_dir, run_progress)


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def lag_experiment(strategy, model_dir: str, pool: Pool = gin.REQUIRED,
                   base_steps: int = gin.REQUIRED, continue_steps: int = 0,
                   schedule: ProbeSchedule = None, rule: SelectorRule = None,
                   keep_loser_checkpoints: bool = True, scratch_baseline: bool = False,
                   seed_spread: float = 0.0, run_progress: RunProgress = None) -> dict:
  """`lag`: train a base model, probe every candidate of the pool for k steps, commit the best by
  the selector rule, continue only the winner (a schedule of one growth stage).

  base_steps: steps of the small model before growth.
  continue_steps: steps the winner trains after its probe (the total after growth is
    probe_steps + continue_steps).
  keep_loser_checkpoints: False deletes the losers' checkpoints after the commit (their
    metrics stay).
  scratch_baseline: also train the grown config from scratch for the run's whole training
    FLOPs (probes included) in <model_dir>/scratch, and compare in summary.md.
  seed_spread: the standard deviation over seeds of (winner - scratch) final eval loss,
    measured for this config (e.g. benchmarks/quickstart_seeds.py); the comparison's verdict
    counts it as noise beside the eval batches' standard error (0: not measured, and the
    summary says so).
  """
  return _execute(lag_schedule, strategy, model_dir, run_progress, pool, base_steps,
                  continue_steps, schedule, rule, keep_loser_checkpoints, scratch_baseline,
                  seed_spread)


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def gradual_experiment(strategy, model_dir: str, mode: str = "adaptive",
                       stages: StageSchedule = None, template: StagePoolTemplate = None,
                       schedule: ProbeSchedule = None, rule: SelectorRule = None,
                       keep_loser_checkpoints: bool = True,
                       run_progress: RunProgress = None) -> dict:
  """`gradual`: adaptive gradual stacking and its fixed baselines, on the same machinery (a
  schedule of one growth stage per depth).

  mode:
    'adaptive'          each stage's pool comes from StagePoolTemplate; LAG commits the best.
    'gradual_stacking'  always copy the top block (one-candidate pool).
    'midas'             always copy the middle block (one-candidate pool).
    'scratch'           the final-size model from scratch, for the same training FLOPs as one
                        gradual run (the sum over stages of steps x FLOPs per step; probing
                        overhead excluded, so the baseline is not short-changed).
  """
  return _execute(gradual_schedule, strategy, model_dir, run_progress, mode, stages, template,
                  schedule, rule, keep_loser_checkpoints)


EXPERIMENTS: Dict[str, Callable] = {
    "train": train_experiment,
    "grow": grow_experiment,
    "lag": lag_experiment,
    "gradual": gradual_experiment,
    "study": study_experiment,
}
# The kinds whose experiment builds a RunSchedule from its gin arguments and runs it: each
# builder takes (model config, mask probability, **the experiment's arguments), so lag_tf.plan
# builds the run's own schedule.
SCHEDULES: Dict[str, Callable] = {
    "train": train_schedule,
    "lag": lag_schedule,
    "gradual": gradual_schedule,
}


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def run_experiment(strategy, model_dir: str, kind: str = "train",
                   run_progress: Optional[RunProgress] = None) -> dict:
  if kind not in EXPERIMENTS:
    raise ValueError(f"run_experiment.kind={kind!r}: expected one of {sorted(EXPERIMENTS)}")
  return EXPERIMENTS[kind](strategy, model_dir, run_progress=run_progress)
