"""Growth against scratch at equal compute: the maths (pure numpy; no TF, no files).

A method's *curve* is its eval loss against the training FLOPs it has spent, probes of losing
candidates included. Its compute ratio against scratch at a target loss T is

  ratio = F_scratch(T) / F_method(T)

where F(T) is the FLOPs at which a curve first reaches T (linear interpolation between evals).
A method that never reaches T (its final loss L stays above T) is compared at its own final
loss instead: ratio = F_scratch(L) / F_method_total, which is below 1. So the ratio is always
"scratch's compute for a loss / the method's compute for the same loss": > 1 means growth saved
compute. Confidence intervals are over seeds (Student t, the seeds paired across methods).

The scratch *frontier* (the sceptic's standard, Kaddour et al. 2023) is the lower envelope of
every (FLOPs, eval loss) point of every scratch run (annealed runs at several budgets and
learning-rate schedules, each evaluation of each run): the best loss scratch measured within the
FLOPs. A method's speedup against it is the FLOPs the envelope needs for the method's final loss
(interpolated in log FLOPs between the envelope's neighbouring points) over the FLOPs at which
the method reached that loss. The fixed-size frontier is the target depth's runs; the any-size
one every depth's. Outside a frontier's measured range the answer is a bound, never an
extrapolation. Ratios are averaged geometrically, with Student-t intervals on their logs.
"""

from __future__ import annotations

import dataclasses
import math
from typing import List, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy import stats


@dataclasses.dataclass(frozen=True)
class Curve:
  """Eval losses at cumulative training FLOPs (ascending)."""

  flops: np.ndarray
  losses: np.ndarray

  def __post_init__(self):
    object.__setattr__(self, "flops", np.asarray(self.flops, np.float64))
    object.__setattr__(self, "losses", np.asarray(self.losses, np.float64))
    if self.flops.shape != self.losses.shape or self.flops.ndim != 1 or not len(self.flops):
      raise ValueError("Curve: flops and losses must be equal-length, non-empty vectors")
    if np.any(np.diff(self.flops) < 0):
      raise ValueError("Curve: flops must not decrease")

  @property
  def final_loss(self) -> float:
    return float(self.losses[-1])

  @property
  def total_flops(self) -> float:
    return float(self.flops[-1])

  def loss_at(self, flops: float) -> float:
    """The loss at `flops`, interpolated linearly between evals (clamped at the ends)."""
    return float(np.interp(flops, self.flops, self.losses))


def flops_to_reach(curve: Curve, target: float) -> Optional[float]:
  """FLOPs at which the curve first reaches `target` (None: never)."""
  below = np.nonzero(curve.losses <= target)[0]
  if not len(below):
    return None
  i = int(below[0])
  if i == 0:
    return float(curve.flops[0])
  f0, f1, l0, l1 = curve.flops[i - 1], curve.flops[i], curve.losses[i - 1], curve.losses[i]
  return float(f0 + (f1 - f0) * (l0 - target) / (l0 - l1))


def compute_ratio(method: Curve, scratch: Curve, target: float) -> Tuple[float, bool]:
  """(scratch FLOPs / method FLOPs for a common loss, whether the method reached `target`)."""
  reached = flops_to_reach(method, target)
  if reached is not None and reached > 0:
    scratch_flops = flops_to_reach(scratch, target)
    if scratch_flops is None:  # Scratch never got there: it needed at least its whole budget.
      scratch_flops = scratch.total_flops
    return scratch_flops / reached, True
  common = method.final_loss
  scratch_flops = flops_to_reach(scratch, common)
  if scratch_flops is None:
    scratch_flops = scratch.total_flops
  return scratch_flops / method.total_flops, False


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> Tuple[float, float, float]:
  """(mean, low, high): Student-t interval over the values (NaN bounds for one value)."""
  values = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
  if not len(values):
    return math.nan, math.nan, math.nan
  mean = float(values.mean())
  if len(values) < 2:
    return mean, math.nan, math.nan
  half = float(stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1)
               / math.sqrt(len(values)))
  return mean, mean - half, mean + half


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = 0.95) -> Tuple[float, float, float]:
  """Mean and CI of a - b over paired seeds."""
  return mean_ci([x - y for x, y in zip(a, b)], confidence)


def mean_curve(curves: Sequence[Curve], grid: np.ndarray) -> Tuple[np.ndarray, np.ndarray,
                                                                    np.ndarray]:
  """Mean and min/max band of curves interpolated on `grid` (NaN beyond a curve's range)."""
  rows = []
  for curve in curves:
    row = np.interp(grid, curve.flops, curve.losses)
    row[(grid < curve.flops[0]) | (grid > curve.flops[-1])] = np.nan
    rows.append(row)
  rows = np.asarray(rows)
  with np.errstate(all="ignore"):
    import warnings
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", RuntimeWarning)
      return np.nanmean(rows, 0), np.nanmin(rows, 0), np.nanmax(rows, 0)


EXACT, AT_MOST, MORE_THAN = "=", "<=", ">"


@dataclasses.dataclass(frozen=True)
class Bounded:
  """A value that may be a bound: `kind` is '=' (measured), '<=' (at most) or '>' (more than)."""

  value: float
  kind: str = EXACT

  def __str__(self) -> str:
    prefix = "" if self.kind == EXACT else ("≤ " if self.kind == AT_MOST else "> ")
    return f"{prefix}{self.value:.2f}"


def flops_for_loss(points: Sequence[Tuple[float, float]], loss: float) -> Bounded:
  """FLOPs one depth's annealed runs need to reach `loss`: the first budget whose final loss is
  at most `loss`, interpolated in log FLOPs from the budget before it. Reached already at the
  smallest budget: at most that budget. Never reached: more than the largest."""
  points = sorted(points)
  for index, (flops, final) in enumerate(points):
    if final <= loss:
      if final == loss:
        return Bounded(flops)
      if index == 0:
        return Bounded(flops, AT_MOST)
      f0, l0 = points[index - 1]
      share = (l0 - loss) / (l0 - final)
      return Bounded(float(math.exp(math.log(f0) + share * (math.log(flops) - math.log(f0)))))
  return Bounded(points[-1][0], MORE_THAN)


def envelope(points: Sequence[Tuple[float, float]]) -> List[Tuple[float, float]]:
  """The lower envelope of (FLOPs, loss) points: ascending FLOPs, each point's loss below every
  point's with fewer FLOPs (points at zero FLOPs, the untrained model, are left out). A longer
  run's evaluation before its end counts like an annealed run's final one: the envelope is the
  best loss any scratch run measured within the FLOPs."""
  best, kept = math.inf, []
  for flops, loss in sorted((float(f), float(l)) for f, l in points if f > 0):
    if loss < best:
      kept.append((flops, loss))
      best = loss
  return kept


def envelope_flops(points: Sequence[Tuple[float, float]], loss: float) -> Bounded:
  """The FLOPs the envelope of `points` needs for `loss`, interpolated in log FLOPs between its
  neighbouring points (loss linear in log FLOPs; monotone by construction). A bound outside the
  measured range: at most the smallest FLOPs when the first point already reaches it, more than
  the largest FLOPs measured when no point does."""
  kept = envelope(points)
  if not kept:
    raise ValueError("envelope_flops: no points with FLOPs > 0")
  needed = flops_for_loss(kept, loss)
  if needed.kind == MORE_THAN:
    return Bounded(max(float(f) for f, _ in points), MORE_THAN)
  return needed


def envelope_loss(points: Sequence[Tuple[float, float]], grid: np.ndarray) -> np.ndarray:
  """The envelope of `points` read at each FLOPs of `grid`, as envelope_flops reads it: log-FLOP
  interpolation between its points, its best loss beyond them, inf before its first point."""
  flops, losses = zip(*envelope(points))
  grid = np.asarray(grid, np.float64)
  values = np.interp(np.log(grid), np.log(flops), losses)
  return np.where(grid < flops[0], np.inf, values)


def frontier_flops(by_depth: Mapping[int, Sequence[Tuple[float, float]]],
                   loss: float) -> Bounded:
  """The frontier over these depths: the envelope of every depth's points together (one depth:
  the fixed-size frontier; all of them: the any-size one)."""
  points = [point for depth_points in by_depth.values() for point in depth_points]
  if not points:
    raise ValueError("frontier_flops: no frontier points")
  return envelope_flops(points, loss)


def frontier_speedup(by_depth: Mapping[int, Sequence[Tuple[float, float]]], loss: float,
                     method_flops: float) -> Bounded:
  """The frontier's FLOPs for the method's final loss over the method's FLOPs for it (> 1: the
  method reached its loss more cheaply than any scratch run on this frontier)."""
  needed = frontier_flops(by_depth, loss)
  return Bounded(needed.value / method_flops, needed.kind)


def own_flops(curve: Curve) -> float:
  """The FLOPs at which a run reached its final loss, read as the frontier reads scratch runs
  (its own envelope, log-FLOP interpolation): a run on the frontier has speedup exactly 1.00,
  also when its curve is not monotone."""
  return envelope_flops(list(zip(curve.flops, curve.losses)), curve.final_loss).value


def geometric_mean_ci(values: Sequence[Bounded], confidence: float = 0.95) -> Tuple[Bounded,
                                                                                      float,
                                                                                      float]:
  """(geometric mean, low, high) over seeds: a Student-t interval on the logs. If some seeds
  are bounds in one direction, the mean is a bound that way too (its interval is given for the
  values as measured); bounds both ways give NaN."""
  values = [v for v in values if v is not None and math.isfinite(v.value) and v.value > 0]
  if not values:
    return Bounded(math.nan), math.nan, math.nan
  kinds = {v.kind for v in values} - {EXACT}
  kind = EXACT if not kinds else (kinds.pop() if len(kinds) == 1 else None)
  mean, low, high = mean_ci([math.log(v.value) for v in values], confidence)
  if kind is None:
    return Bounded(math.nan), math.nan, math.nan
  return Bounded(math.exp(mean), kind), math.exp(low), math.exp(high)
