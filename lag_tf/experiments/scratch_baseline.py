"""The scratch baseline of a LAG run: the grown model's config trained from random
initialization for the run's whole training-FLOP budget (base + every probe + continuation),
so a run's summary can say whether growing paid at equal compute.

Both end on the same fixed held-out batches, so the comparison is paired
(`lag_tf.analysis.summary.scratch_comparison`, also what the run's report ends on).
"""

from __future__ import annotations

from typing import Optional

import gin

from lag_tf import model_dir_store as store
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import flops_per_token
from lag_tf.training.schedules import WarmupDecaySchedule
from lag_tf.training.engine import EvalResult
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import Trainer, make_optimizer


def scratch_steps(total_flops: float, config: TransformerConfig, tokens_per_step: int,
                  mask_probability: Optional[float]) -> int:
  """Steps of `config` that cost `total_flops` (the run's budget, probes included), at the run's
  mask probability (models/flops.flops_per_token)."""
  return max(1, int(round(total_flops / (tokens_per_step
                                         * flops_per_token(config, mask_probability)))))


def train_scratch(config: TransformerConfig, data, strategy, model_dir: str, steps: int,
                  run_progress: Optional[RunProgress] = None) -> EvalResult:
  """Trains (or resumes) `config` from scratch in <model_dir>/scratch; returns its final eval.

  Same optimizer, batch and schedule family as the base model (WarmupDecaySchedule's gin
  settings), stretched over the baseline's own length. Built in the `scratch/` role scope, so
  `scratch/WarmupDecaySchedule.peak_learning_rate` (or `scratch/Trainer.*`) tunes it alone."""
  with gin.config_scope("scratch"):  # The role scope (gin/runs/common.gin).
    trainer = Trainer(config, data, strategy, store.scratch_dir(model_dir),
                      train_steps=steps, name="scratch",
                      optimizer_fn=lambda: make_optimizer(WarmupDecaySchedule(total_steps=steps)),
                      run_progress=run_progress)
  return trainer.resume() or trainer.evaluate()
