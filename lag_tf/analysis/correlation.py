"""How well does loss(t) predict final loss across candidates? Pure numpy.

Conventions shared by every function here:
  * Candidates are compared on the same eval batches; `losses` is [candidates, steps] (loss at
    each probe step t) and `final` is [candidates] (loss at the study's last step T).
  * A candidate whose value is NaN or infinite (diverged, failed, not reached) is *excluded*
    from a correlation, pairwise: only candidates finite in both x and y count.
  * A correlation over fewer than 3 candidates, or where x or y is constant, is undefined and
    returned as NaN (two points always correlate perfectly, which says nothing).
  * Spearman uses average ranks for ties; Kendall is tau-b (tie-corrected), both as in scipy.
    They are computed row-wise on [rows, candidates] arrays so a bootstrap evaluates 1000
    resamples in one call; the O(candidates^2) pairwise form is fine for candidate pools.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

STATISTICS = ("spearman", "kendall", "pearson")
RESAMPLE_AXES = ("both", "seeds", "batches")


# --- Correlations, row-wise on [rows, candidates]. ---------------------------------------------

def average_ranks(values) -> np.ndarray:
  """1-based ranks along the last axis; tied values share the average of their ranks."""
  x = np.asarray(values, dtype=np.float64)
  below = (x[..., None, :] < x[..., :, None]).sum(-1)
  equal = (x[..., None, :] == x[..., :, None]).sum(-1)  # Counts the value itself.
  return below + (equal + 1) / 2.0


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  x_centered = x - x.mean(-1, keepdims=True)
  y_centered = y - y.mean(-1, keepdims=True)
  numerator = (x_centered * y_centered).sum(-1)
  denominator = np.sqrt((x_centered ** 2).sum(-1) * (y_centered ** 2).sum(-1))
  # A constant row has no correlation; test the spread exactly so that float residue of the
  # mean cannot produce a spurious +-1.
  constant = (np.ptp(x, axis=-1) == 0) | (np.ptp(y, axis=-1) == 0)
  with np.errstate(invalid="ignore", divide="ignore"):
    result = numerator / denominator
  return np.where(constant, np.nan, np.clip(result, -1.0, 1.0))


def _kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  # tau-b = sum_{i<j} sx*sy / sqrt(#pairs untied in x * #pairs untied in y); the factor 2 from
  # summing over all ordered pairs cancels.
  x_signs = np.sign(x[..., :, None] - x[..., None, :])
  y_signs = np.sign(y[..., :, None] - y[..., None, :])
  numerator = (x_signs * y_signs).sum((-2, -1))
  denominator = np.sqrt(np.count_nonzero(x_signs, axis=(-2, -1)).astype(np.float64) *
                        np.count_nonzero(y_signs, axis=(-2, -1)))
  with np.errstate(invalid="ignore", divide="ignore"):
    result = numerator / denominator
  return np.where(denominator == 0, np.nan, np.clip(result, -1.0, 1.0))


def _correlation_rows(x: np.ndarray, y: np.ndarray, statistic: str) -> np.ndarray:
  """Correlation of each row of x with the same row of y; all values must be finite."""
  if statistic not in STATISTICS:
    raise ValueError(f"statistic={statistic!r}: expected one of {STATISTICS}")
  if x.shape[-1] < 3:
    return np.full(x.shape[:-1], np.nan)
  if statistic == "pearson":
    return _pearson_rows(x, y)
  if statistic == "spearman":
    return _pearson_rows(average_ranks(x), average_ranks(y))
  return _kendall_rows(x, y)


def correlation(x: Sequence[float], y: Sequence[float], statistic: str = "spearman") -> float:
  """One correlation across candidates; non-finite pairs excluded, NaN if < 3 remain."""
  x = np.asarray(x, dtype=np.float64).ravel()
  y = np.asarray(y, dtype=np.float64).ravel()
  if x.shape != y.shape:
    raise ValueError(f"x and y differ in length: {x.size} vs {y.size}")
  keep = np.isfinite(x) & np.isfinite(y)
  return float(_correlation_rows(x[keep][None], y[keep][None], statistic)[0])


def correlation_by_step(losses, final, statistic: str = "spearman") -> np.ndarray:
  """[steps] correlation of losses[:, t] with final, for every step t of [candidates, steps]."""
  losses = np.asarray(losses, dtype=np.float64)
  return np.array([correlation(losses[:, t], final, statistic) for t in range(losses.shape[1])])


# --- Bootstrap over seeds and eval batches. ----------------------------------------------------

@dataclasses.dataclass(frozen=True)
class BootstrapCurve:
  """Point estimate and percentile interval per step (NaN bounds: nothing to resample)."""

  statistic: str
  estimate: np.ndarray
  low: np.ndarray
  high: np.ndarray
  confidence: float
  num_resamples: int


def _as_seeds_candidates_steps_batches(batch_losses) -> np.ndarray:
  x = np.asarray(batch_losses, dtype=np.float64)
  if x.ndim == 3:
    x = x[None]
  if x.ndim != 4:
    raise ValueError(f"batch losses have shape {x.shape}: expected [candidates, steps, batches]"
                     " or [seeds, candidates, steps, batches]")
  return x


def _resampling_weights(rng: np.random.Generator, size: int, num_resamples: int,
                        resample: bool) -> np.ndarray:
  """[resamples, size] weights summing to 1 per row: counts of a draw with replacement."""
  if not resample or size == 1:
    return np.full((num_resamples, size), 1.0 / size)
  draws = rng.integers(0, size, size=(num_resamples, size))
  counts = np.stack([np.bincount(row, minlength=size) for row in draws])
  return counts / float(size)


def bootstrap_correlation_by_step(batch_losses, final_losses, statistic: str = "spearman",
                                  num_resamples: int = 1000, confidence: float = 0.95,
                                  resample: str = "both", seed: int = 0) -> BootstrapCurve:
  """Correlation of loss(t) with final loss at every step, with percentile bootstrap bounds.

  batch_losses: [candidates, steps, batches] or [seeds, candidates, steps, batches]: per-batch
    eval losses on the shared eval batches. A candidate's loss(t) is the mean over seeds and
    batches.
  final_losses: the final loss per candidate, either per batch ([candidates, batches] or
    [seeds, candidates, batches]; resampled with the *same* batches as loss(t), since the eval
    batches are shared) or already averaged ([candidates] or [seeds, candidates]).
  resample: 'batches', 'seeds' or 'both'. One draw of seeds and batches is reused at every
    step (common random numbers), so the band is smooth and the result is fixed by `seed`.

  A candidate with any non-finite value at step t or in its final losses is excluded at that
  step. Resamples whose correlation is undefined (e.g. a constant resample) are dropped from
  the percentiles. With a single seed and a single batch there is nothing to resample and the
  bounds are NaN.
  """
  if resample not in RESAMPLE_AXES:
    raise ValueError(f"resample={resample!r}: expected one of {RESAMPLE_AXES}")
  if not 0 < confidence < 1:
    raise ValueError(f"confidence={confidence}: expected a value in (0, 1)")
  if num_resamples < 1:
    raise ValueError(f"num_resamples={num_resamples}: expected >= 1")
  x = _as_seeds_candidates_steps_batches(batch_losses)
  num_seeds, num_candidates, num_steps, num_batches = x.shape
  final = np.asarray(final_losses, dtype=np.float64)
  with_seed_axis = np.asarray(batch_losses).ndim == 4
  if not with_seed_axis:
    final = final[None]
  if final.shape[:2] != (num_seeds, num_candidates) or final.ndim not in (2, 3):
    raise ValueError(f"final losses have shape {np.asarray(final_losses).shape}: expected "
                     f"{'[seeds, ' if with_seed_axis else '['}candidates] or the same with a "
                     "trailing batches axis")
  final_per_batch = final.ndim == 3
  if final_per_batch and final.shape[2] != num_batches:
    raise ValueError(f"final losses have {final.shape[2]} batches, losses(t) {num_batches}")

  rng = np.random.default_rng(seed)
  seed_weights = _resampling_weights(rng, num_seeds, num_resamples,
                                     resample in ("both", "seeds"))
  batch_weights = _resampling_weights(rng, num_batches, num_resamples,
                                      resample in ("both", "batches"))
  nothing_to_resample = ((num_seeds == 1 or resample == "batches") and
                         (num_batches == 1 or resample == "seeds"))

  final_finite = np.isfinite(final).reshape(num_seeds, num_candidates, -1).all((0, 2))
  with np.errstate(invalid="ignore"):
    if final_per_batch:
      final_point = final.mean((0, 2))
      final_resampled = np.einsum("scb,rb,rs->rc", np.nan_to_num(final), batch_weights,
                                  seed_weights)
    else:
      final_point = final.mean(0)
      final_resampled = np.einsum("sc,rs->rc", np.nan_to_num(final), seed_weights)

  estimate, low, high = (np.full(num_steps, np.nan) for _ in range(3))
  tail = 100.0 * (1.0 - confidence) / 2.0
  for step in range(num_steps):
    at_step = x[:, :, step, :]
    keep = np.isfinite(at_step).all((0, 2)) & final_finite
    if keep.sum() < 3:
      continue
    point = at_step[:, keep, :].mean((0, 2))
    estimate[step] = _correlation_rows(point[None], final_point[keep][None], statistic)[0]
    if nothing_to_resample:
      continue
    resampled = np.einsum("scb,rb,rs->rc", at_step[:, keep, :], batch_weights, seed_weights)
    values = _correlation_rows(resampled, final_resampled[:, keep], statistic)
    values = values[np.isfinite(values)]
    if values.size:
      low[step], high[step] = np.percentile(values, [tail, 100.0 - tail])
  return BootstrapCurve(statistic=statistic, estimate=estimate, low=low, high=high,
                        confidence=confidence, num_resamples=num_resamples)


# --- Choosing at step t: agreement, regret, smallest k, compute. -------------------------------

def chosen_by_step(losses) -> np.ndarray:
  """Index of the candidate with the lowest finite loss at each step ([..., candidates, steps]
  -> [..., steps]); -1 where no candidate is finite. Ties go to the lower index."""
  losses = np.asarray(losses, dtype=np.float64)
  finite = np.isfinite(losses)
  masked = np.where(finite, losses, np.inf)
  return np.where(finite.any(-2), masked.argmin(-2), -1)


def regret(losses, final) -> np.ndarray:
  """[..., steps]: final loss of the candidate chosen at t minus the best final loss.

  Candidates whose final loss is not finite (failed) cannot be chosen or be the best: they are
  masked out of `losses` first, so a study's regret is about the candidates that finished.
  NaN where nothing can be chosen. Leading axes (e.g. seeds) are kept; average them yourself.
  """
  losses = np.asarray(losses, dtype=np.float64)
  final = np.asarray(final, dtype=np.float64)
  finite = np.isfinite(final)
  chosen = chosen_by_step(np.where(finite[..., None], losses, np.nan))
  picked = np.take_along_axis(final, np.maximum(chosen, 0), axis=-1)
  best = np.where(finite.any(-1), np.where(finite, final, np.inf).min(-1), np.nan)
  return np.where(chosen >= 0, picked - best[..., None], np.nan)


def top1_agreement(losses, final) -> np.ndarray:
  """[..., steps] booleans: is the argmin at t the argmin of the final losses? (Same masking
  as `regret`; ties in the final loss count as agreement.)"""
  return regret(losses, final) == 0.0


def smallest_step_reaching(steps: Sequence[int], values: Sequence[float], target: float,
                           sustained: bool = False) -> Optional[int]:
  """The smallest step whose value is >= target (NaN never reaches); with sustained=True,
  every later value must stay >= target too. None if no step qualifies."""
  steps = np.asarray(steps)
  reached = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf) >= target
  if steps.shape != reached.shape:
    raise ValueError(f"steps and values differ in length: {steps.size} vs {reached.size}")
  order = np.argsort(steps, kind="stable")
  steps, reached = steps[order], reached[order]
  if sustained:
    # reached from here to the end <=> the reversed cumulative AND.
    reached = np.logical_and.accumulate(reached[::-1])[::-1]
  hits = np.flatnonzero(reached)
  return int(steps[hits[0]]) if hits.size else None


def probe_flops(flops_per_step: Sequence[float], probe_step: float,
                steps_reached: Optional[Sequence[float]] = None) -> float:
  """FLOPs of probing every candidate for `probe_step` steps: sum_c flops_c * t (a candidate
  that stopped early, at steps_reached[c], costs only the steps it ran)."""
  flops = np.asarray(flops_per_step, dtype=np.float64)
  steps = np.full(flops.shape, float(probe_step))
  if steps_reached is not None:
    steps = np.minimum(steps, np.asarray(steps_reached, dtype=np.float64))
  return float((flops * steps).sum())


def probe_compute_fraction(flops_per_step: Sequence[float], probe_step: float,
                           total_steps: float,
                           steps_reached: Optional[Sequence[float]] = None) -> float:
  """Probing all candidates for t steps as a fraction of the full study (all for T steps).
  With equal steps for all this is t/T whatever the FLOPs; it differs when some stopped."""
  if total_steps <= 0:
    raise ValueError(f"total_steps={total_steps}: expected > 0")
  return probe_flops(flops_per_step, probe_step, steps_reached) / probe_flops(
      flops_per_step, total_steps, steps_reached)

