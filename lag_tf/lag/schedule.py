"""The probe schedule: how long each candidate is probed, when it is evaluated, and the
post-growth learning-rate schedule every candidate (and then the winner) trains with."""

from __future__ import annotations

import dataclasses
from typing import List, Tuple

from lag_tf import gin_registry
from lag_tf.training.schedules import WarmupDecaySchedule


@gin_registry.configurable
@dataclasses.dataclass(frozen=True)
class ProbeSchedule:
  """probe_steps: k, the probe length after growth.
  eval_steps: probe steps to evaluate at; 0 (the grown model at initialization) and k are
    always added. All candidates use the same fixed held-out batches (Trainer.eval_batches).
  rewarmup_steps, peak_learning_rate, decay, end_fraction: the post-growth schedule; it decays
    over the probe *and* the winner's continuation, so probing is exactly the start of the
    winner's run and its probe steps are not wasted.
  growth_seed: seeds the growth operators' randomness (noise, fresh layers), the same for all.
  """

  probe_steps: int = 50
  eval_steps: Tuple[int, ...] = (0, 5, 10, 25)
  rewarmup_steps: int = 10
  peak_learning_rate: float = 1e-3
  decay: str = "linear"
  end_fraction: float = 0.0
  growth_seed: int = 0

  def __post_init__(self):
    if not isinstance(self.probe_steps, int) or self.probe_steps < 1:
      raise ValueError(f"ProbeSchedule.probe_steps={self.probe_steps!r}: expected an int >= 1")
    bad = [s for s in self.eval_steps if not 0 <= s <= self.probe_steps]
    if bad:
      raise ValueError(f"ProbeSchedule.eval_steps {bad} are outside [0, probe_steps="
                       f"{self.probe_steps}]")

  def probe_eval_steps(self) -> List[int]:
    return sorted(set(int(s) for s in self.eval_steps) | {0, self.probe_steps})

  def learning_rate(self, start_step: int, steps_after_growth: int) -> WarmupDecaySchedule:
    """The schedule as a function of the optimizer's iteration count, which continues from
    `start_step` (the base optimizer's count at growth) for every candidate."""
    return WarmupDecaySchedule(
        peak_learning_rate=self.peak_learning_rate, warmup_steps=self.rewarmup_steps,
        total_steps=max(steps_after_growth, self.probe_steps), decay=self.decay,
        end_fraction=self.end_fraction, start_step=start_step)
