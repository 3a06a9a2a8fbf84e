"""Learning-rate schedules: linear warmup, then a decay, as a Keras schedule.

`start_step` shifts the schedule so a model grown at step s can re-warm up from s (the LAG
probes use this); the schedule is a pure function of the optimizer's iteration count.
"""

from __future__ import annotations

import math

import keras
from keras import ops

from lag_tf import gin_registry

DECAYS = ("constant", "linear", "cosine", "inverse_sqrt", "wsd")


@gin_registry.configurable
class WarmupDecaySchedule(keras.optimizers.schedules.LearningRateSchedule):
  """peak * min(1, t / warmup_steps) * decay(t), with t = step - start_step.

  decay: 'constant'; 'linear' to end_fraction * peak at total_steps; 'cosine' to
  end_fraction * peak at total_steps; 'inverse_sqrt' (sqrt(warmup / t) after warmup); 'wsd'
  (warmup-stable-decay: the peak until the last cooldown_fraction of total_steps, then linear to
  end_fraction * peak at total_steps).
  """

  def __init__(self, peak_learning_rate: float = 1e-3, warmup_steps: int = 100,
               total_steps: int = 1000, decay: str = "linear", end_fraction: float = 0.0,
               start_step: int = 0, cooldown_fraction: float = 0.2):
    if decay not in DECAYS:
      raise ValueError(f"WarmupDecaySchedule.decay={decay!r}: expected one of {DECAYS}")
    if peak_learning_rate <= 0:
      raise ValueError(f"WarmupDecaySchedule.peak_learning_rate={peak_learning_rate}: "
                       "expected > 0")
    if warmup_steps < 0 or total_steps < 1:
      raise ValueError(f"WarmupDecaySchedule: warmup_steps={warmup_steps} and "
                       f"total_steps={total_steps} must be >= 0 and >= 1")
    if not 0.0 < cooldown_fraction <= 1.0:
      raise ValueError(f"WarmupDecaySchedule.cooldown_fraction={cooldown_fraction}: expected a "
                       "share of total_steps in (0, 1]")
    self.peak_learning_rate = peak_learning_rate
    self.warmup_steps = warmup_steps
    self.total_steps = total_steps
    self.decay = decay
    self.end_fraction = end_fraction
    self.start_step = start_step
    self.cooldown_fraction = cooldown_fraction

  def __call__(self, step):
    t = ops.maximum(ops.cast(step, "float32") - float(self.start_step), 0.0)
    warmup = ops.minimum(1.0, (t + 1.0) / float(max(self.warmup_steps, 1)))
    if self.decay == "constant":
      decay = 1.0
    elif self.decay == "inverse_sqrt":
      decay = ops.minimum(1.0, ops.sqrt(float(max(self.warmup_steps, 1)) / ops.maximum(t, 1.0)))
    else:
      decay_start = float(self.warmup_steps)
      if self.decay == "wsd":
        decay_start = max(decay_start, self.total_steps * (1.0 - self.cooldown_fraction))
      decay_span = max(float(self.total_steps) - decay_start, 1.0)
      progress = ops.clip((t - decay_start) / decay_span, 0.0, 1.0)
      if self.decay in ("linear", "wsd"):
        shape = 1.0 - progress
      else:
        shape = 0.5 * (1.0 + ops.cos(math.pi * progress))
      decay = self.end_fraction + (1.0 - self.end_fraction) * shape
    return self.peak_learning_rate * warmup * decay

  def get_config(self):
    return dict(peak_learning_rate=self.peak_learning_rate, warmup_steps=self.warmup_steps,
                total_steps=self.total_steps, decay=self.decay, end_fraction=self.end_fraction,
                start_step=self.start_step, cooldown_fraction=self.cooldown_fraction)
