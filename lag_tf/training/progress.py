"""The whole run's progress: which phase is training, and when the run should end.

A run is many Trainers one after another (base, every candidate's probe, the continuation,
gradual stages, a scratch baseline). Each Trainer prints its own progress line with its phase's
ETA; this module adds what no single Trainer knows:

- the phase label (`probe stack (3 of 10)`, `stage 2: continue copy_top`), set by the code that
  knows the index (`with run_progress.phase(...)`), and
- an ETA for the whole run: the planned training FLOPs (lag_tf.plan, given by lag_tf.main)
  minus the FLOPs done, over the FLOP rate this process has achieved so far (wall time, so
  evaluations, checkpoints and tracing are in it).

FLOPs done are what each phase's model holds, whether trained in this process or restored
from a checkpoint (`hold`), so a restarted job's ETA is not its whole plan; the rate counts only
what this process trained. Who makes it and hands it down: docs/design.md, "Data flow of a
run", step 3 (a Trainer built without one keeps its own: no plan, no run ETA).
"""

from __future__ import annotations

import contextlib
import time
from typing import Dict, Iterator, Optional


class RunProgress:
  """Planned and done training FLOPs of one run, and the current phase label."""

  def __init__(self, planned_flops: Optional[float] = None):
    self.planned_flops = planned_flops if planned_flops and planned_flops > 0 else None
    self.label: Optional[str] = None
    # Per phase directory: the training FLOPs its model holds (checkpoint or training here).
    # Keyed by directory so a winner continued in its probe directory is not counted twice.
    self._held: Dict[str, float] = {}
    self._trained = 0.0  # Trained by this process since its first training loop: the rate.
    self._started: Optional[float] = None

  def start_clock(self) -> None:
    """The run's rate clock starts at its first training loop, not at process start."""
    if self._started is None:
      self._started = time.perf_counter()

  def hold(self, directory: str, flops: float) -> None:
    """The model trained in `directory` now holds `flops` of training (since its phase began)."""
    self._held[directory] = max(self._held.get(directory, 0.0), flops)

  def forgo(self, flops: float) -> None:
    """Training the plan counted that this run will not do (a race's plan is its worst case:
    nobody leaves; a candidate that left early forgoes the rest of its probe), so the run ends
    at 100% and its ETA does not wait for it."""
    if self.planned_flops is not None:
      left = self.planned_flops - max(flops, 0.0)
      # Nothing left of the plan means it was not this run's (a plan must hold its own
      # training): no plan, no ETA, rather than a division by zero.
      self.planned_flops = left if left > 0 else None

  def trained(self, flops: float) -> None:
    self.start_clock()
    self._trained += max(flops, 0.0)

  @property
  def done_flops(self) -> float:
    return sum(self._held.values())

  def eta_seconds(self) -> Optional[float]:
    """Seconds left for the whole run, or None (no plan, or no rate measured yet)."""
    if self.planned_flops is None or self._started is None or self._trained <= 0:
      return None
    elapsed = time.perf_counter() - self._started
    if elapsed <= 0:
      return None
    remaining = max(self.planned_flops - self.done_flops, 0.0)
    return remaining / (self._trained / elapsed)

  def done_fraction(self) -> Optional[float]:
    if self.planned_flops is None:
      return None
    return min(self.done_flops / self.planned_flops, 1.0)

  @contextlib.contextmanager
  def phase(self, label: str) -> Iterator[None]:
    """Progress lines inside the block name this phase (nested blocks: the innermost)."""
    outer = self.label
    self.label = label
    try:
      yield
    finally:
      self.label = outer


def format_seconds(seconds: float) -> str:
  seconds = int(round(seconds))
  if seconds < 60:
    return f"{seconds}s"
  if seconds < 3600:
    return f"{seconds // 60}m{seconds % 60:02d}s"
  return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
