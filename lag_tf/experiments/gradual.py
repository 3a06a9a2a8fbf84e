"""`gradual`: adaptive gradual stacking and its fixed baselines, on the same machinery (a
schedule of one growth stage per depth: experiments.schedule).

mode:
  'adaptive'          each stage's pool comes from StagePoolTemplate; LAG commits the best.
  'gradual_stacking'  always copy the top block (one-candidate pool).
  'midas'             always copy the middle block (one-candidate pool).
  'scratch'           the final-size model from scratch, for the same training FLOPs as one
                      gradual run (the sum over stages of steps x FLOPs per step; probing
                      overhead excluded, so the baseline is not short-changed).

Model dir: docs/design.md, "The model dir" (stage 0 is the base, in the model dir itself).
"""

from __future__ import annotations

from lag_tf import gin_registry
from lag_tf.data import LanguageModelingData
from lag_tf.experiments.executor import execute
from lag_tf.experiments.schedule import gradual_schedule
from lag_tf.lag.gradual import StagePoolTemplate, StageSchedule
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import SelectorRule
from lag_tf.models import TransformerConfig
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import mask_probability_of


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def gradual_experiment(strategy, model_dir: str, mode: str = "adaptive",
                       stages: StageSchedule = None, template: StagePoolTemplate = None,
                       schedule: ProbeSchedule = None, rule: SelectorRule = None,
                       keep_loser_checkpoints: bool = True,
                       run_progress: RunProgress = None) -> dict:
  config, data = TransformerConfig(), LanguageModelingData()
  run = gradual_schedule(config, mask_probability_of(config, data), mode, stages, template,
                         schedule, rule, keep_loser_checkpoints)
  return execute(run, data, strategy, model_dir, run_progress)
