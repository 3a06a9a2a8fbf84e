"""`lag`: train a base model, probe every candidate of the pool for k steps, commit the best by
the selector rule, continue only the winner (a one-growth-stage schedule: experiments.schedule).

Model dir: docs/design.md, "The model dir" (scratch/: lag_experiment.scratch_baseline).
"""

from __future__ import annotations

import gin

from lag_tf import gin_registry
from lag_tf.data import LanguageModelingData
from lag_tf.experiments.executor import execute
from lag_tf.experiments.schedule import lag_schedule
from lag_tf.growth import Pool
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import SelectorRule
from lag_tf.models import TransformerConfig
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import mask_probability_of


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def lag_experiment(strategy, model_dir: str, pool: Pool = gin.REQUIRED,
                   base_steps: int = gin.REQUIRED, continue_steps: int = 0,
                   schedule: ProbeSchedule = None, rule: SelectorRule = None,
                   keep_loser_checkpoints: bool = True, scratch_baseline: bool = False,
                   seed_spread: float = 0.0, run_progress: RunProgress = None) -> dict:
  """base_steps: steps of the small model before growth.
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
  config, data = TransformerConfig(), LanguageModelingData()
  run = lag_schedule(config, mask_probability_of(config, data), pool, base_steps,
                     continue_steps, schedule, rule, keep_loser_checkpoints, scratch_baseline,
                     seed_spread)
  return execute(run, data, strategy, model_dir, run_progress)
