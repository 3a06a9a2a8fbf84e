"""Correlation, bootstrap, regret and compute maths of lag_tf.analysis.correlation (vs scipy)."""

import math

import numpy as np
import pytest
from scipy import stats

from lag_tf.analysis import correlation


def spearman(x, y) -> float:
  return correlation.correlation(x, y, "spearman")


def kendall_tau_b(x, y) -> float:
  return correlation.correlation(x, y, "kendall")


def pearson(x, y) -> float:
  return correlation.correlation(x, y, "pearson")


# Fixed data with ties in x, in y and in both.
PAIRS = [
    ([3.1, 2.0, 2.0, 4.5, 1.0, 2.0, 5.0], [2.2, 1.9, 2.5, 2.0, 1.0, 1.9, 3.0]),
    ([1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 6.0, 7.0, 8.0, 7.0]),
    ([0.5, 0.5, 0.5, 1.0, 1.0, 2.0], [3.0, 2.0, 1.0, 1.0, 0.0, 0.0]),
    ([2.9, 3.3, 2.8, 3.0, 3.6, 3.1, 2.7, 3.4], [2.1, 2.0, 2.3, 2.2, 1.9, 2.2, 2.6, 1.8]),
]


@pytest.mark.parametrize("x,y", PAIRS)
def test_correlations_equal_scipy_with_ties(x, y):
  assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
  assert kendall_tau_b(x, y) == pytest.approx(
      stats.kendalltau(x, y, variant="b")[0], abs=1e-12)
  assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
  np.testing.assert_allclose(correlation.average_ranks(x), stats.rankdata(x, method="average"))


def test_random_data_with_many_ties_equals_scipy():
  rng = np.random.default_rng(3)
  for _ in range(50):
    size = int(rng.integers(3, 15))
    x, y = rng.integers(0, 4, size).astype(float), rng.integers(0, 4, size).astype(float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
      assert math.isnan(spearman(x, y))
      continue
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y)[0], abs=1e-12)


def test_non_finite_candidates_are_excluded_and_fewer_than_three_is_nan():
  x, y = [1.0, np.nan, 3.0, 2.0, 5.0], [1.5, 2.0, np.inf, 2.5, 4.0]
  assert spearman(x, y) == pytest.approx(stats.spearmanr([1, 2, 5], [1.5, 2.5, 4])[0])
  assert math.isnan(spearman([1.0, 2.0], [2.0, 1.0]))
  assert math.isnan(kendall_tau_b([1.0, 2.0, np.nan], [1.0, 2.0, 3.0]))
  assert math.isnan(pearson([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))  # Constant x.
  with pytest.raises(ValueError, match="statistic"):
    correlation.correlation([1, 2, 3], [1, 2, 3], "tau")


def _noisy_study(seed=0, seeds=None):
  """Per-batch losses [(seeds,) candidates=6, steps=4, batches=16]; ranking sharpens with t."""
  rng = np.random.default_rng(seed)
  final = np.linspace(2.0, 2.5, 6)
  scale = np.array([1.0, 0.5, 0.2, 0.0])  # Noise shrinks with the step.
  shape = ((seeds,) if seeds else ()) + (6, 4, 16)
  losses = final[:, None, None] + scale[None, :, None] * rng.normal(size=shape) * 0.8 + \
      0.05 * rng.normal(size=shape)
  return losses, losses[..., -1, :]


def test_bootstrap_contains_estimate_and_is_deterministic():
  losses, final = _noisy_study()
  first = correlation.bootstrap_correlation_by_step(losses, final, num_resamples=300, seed=7)
  again = correlation.bootstrap_correlation_by_step(losses, final, num_resamples=300, seed=7)
  other = correlation.bootstrap_correlation_by_step(losses, final, num_resamples=300, seed=8)
  for a, b in [(first.estimate, again.estimate), (first.low, again.low), (first.high, again.high)]:
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(first.low, other.low)
  assert np.all(first.low <= first.estimate + 1e-12) and np.all(first.estimate <= first.high)
  assert first.high[-1] - first.low[-1] < first.high[0] - first.low[0]  # Tighter later.
  point = spearman(losses.mean(-1)[:, 1], final.mean(-1))
  assert first.estimate[1] == pytest.approx(point)
  kendall = correlation.bootstrap_correlation_by_step(losses[:, 1:2], final, "kendall",
                                                      num_resamples=200)
  assert kendall.low[0] <= kendall.estimate[0] <= kendall.high[0]
  assert kendall.estimate[0] == pytest.approx(kendall_tau_b(losses[:, 1].mean(-1),
                                                            final.mean(-1)))


def test_bootstrap_over_seeds_and_nothing_to_resample():
  losses, final = _noisy_study(seeds=3)
  curve = correlation.bootstrap_correlation_by_step(losses, final.mean(-1), resample="seeds",
                                                    num_resamples=200)
  assert np.all(np.isfinite(curve.low)) and np.all(curve.low <= curve.estimate + 1e-12)
  # One seed, one batch: an estimate but no interval.
  single = correlation.bootstrap_correlation_by_step(losses[0, :, :, :1], final[0, :, :1])
  assert np.all(np.isfinite(single.estimate)) and np.all(np.isnan(single.low))
  with pytest.raises(ValueError, match="final losses"):
    correlation.bootstrap_correlation_by_step(losses, final[0])


def test_bootstrap_excludes_a_failed_candidate():
  losses, final = _noisy_study()
  losses[2, 2:, :] = np.nan  # Diverged at step 2.
  curve = correlation.bootstrap_correlation_by_step(losses, final, num_resamples=100)
  keep = [0, 1, 3, 4, 5]
  assert curve.estimate[0] == pytest.approx(
      spearman(losses[keep, 0].mean(-1), final[keep].mean(-1)))


def test_regret_and_top1_by_hand():
  # Three candidates, steps 0, 10, 100; final losses 2.5, 2.0, 2.2 (b is best).
  losses = np.array([[3.0, 2.6, 2.5],
                     [3.4, 2.7, 2.0],
                     [3.2, 2.4, 2.2]])
  final = losses[:, -1]
  np.testing.assert_array_equal(correlation.chosen_by_step(losses), [0, 2, 1])
  np.testing.assert_allclose(correlation.regret(losses, final), [0.5, 0.2, 0.0])
  np.testing.assert_array_equal(correlation.top1_agreement(losses, final), [False, False, True])
  # A candidate that failed (final NaN) cannot be chosen: c is skipped at step 10.
  failed_final = np.array([2.5, 2.0, np.nan])
  np.testing.assert_allclose(correlation.regret(losses, failed_final), [0.5, 0.5, 0.0])
  # Seeds as a leading axis.
  assert correlation.regret(np.stack([losses, losses]), np.stack([final, final])).shape == (2, 3)


def test_smallest_step_reaching():
  steps = [0, 10, 20, 50, 100]
  rho = [-0.5, 0.85, 0.6, 0.9, np.nan]
  assert correlation.smallest_step_reaching(steps, rho, 0.8) == 10
  assert correlation.smallest_step_reaching(steps, rho, 0.8, sustained=True) is None  # NaN at T.
  rho[-1] = 1.0
  assert correlation.smallest_step_reaching(steps, rho, 0.8, sustained=True) == 50
  assert correlation.smallest_step_reaching(steps, rho, 1.01) is None


def test_compute_accounting_by_hand():
  flops = [1e9, 2e9, 3e9]  # Per step.
  assert correlation.probe_flops(flops, 10) == pytest.approx(6e10)
  assert correlation.probe_compute_fraction(flops, 10, 1000) == pytest.approx(0.01)
  # The 3e9 candidate stopped at step 5: probe 1e10 + 2e10 + 1.5e10; study 1e12 + 2e12 + 1.5e10.
  assert correlation.probe_compute_fraction(flops, 10, 1000, [1000, 1000, 5]) == pytest.approx(
      4.5e10 / 3.015e12)


def test_bootstrap_interval_of_a_few_candidates_contains_its_estimate_and_covers_the_truth():
  """A known answer: 5 candidates whose noise-free losses at step t rank-correlate with their
  final losses at exactly rho = 0.6; each eval batch adds noise. The percentile interval holds
  its own estimate and covers the true 0.6 in at least ~95% of repeated experiments. A rank
  correlation over a few candidates takes few values, so the interval often *ends* at its
  estimate: a study's table once printed "0.117 [0.12, 0.70]" (estimate to 3 digits,
  bounds to 2), which read as an interval excluding its estimate; it was 0.117 [0.117, 0.70]."""
  true_at_t = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
  final = np.array([2.0, 1.0, 4.0, 5.0, 3.0])
  truth = spearman(true_at_t, final)
  assert truth == pytest.approx(0.6)
  covered, at_edge = 0, 0
  for trial in range(200):
    rng = np.random.default_rng(trial)
    batches = true_at_t[:, None] + rng.normal(0.0, 1.0, size=(5, 8))
    curve = correlation.bootstrap_correlation_by_step(batches[:, None], final,
                                                      num_resamples=400, seed=trial)
    estimate, low, high = curve.estimate[0], curve.low[0], curve.high[0]
    assert low <= estimate <= high, (trial, estimate, low, high)
    covered += low <= truth <= high
    at_edge += estimate in (low, high)
  assert covered / 200 >= 0.93
  assert at_edge > 50  # Why the study prints bounds with the estimate's digits.


def test_the_scratch_verdict_counts_the_seed_spread_as_noise():
  """A difference of 0.1 over batches that agree to 0.01 beats scratch for one run's error
  alone; with a seed-to-seed spread of 0.14 measured for the config it is within noise
  (2 x hypot(error, spread) > 0.1), and without a spread the sentence says it is missing."""
  from lag_tf.analysis.summary import paired_standard_error, scratch_comparison
  rng = np.random.default_rng(0)
  scratch = list(rng.normal(2.0, 0.1, 16))
  grown = [x - 0.1 + d for x, d in zip(scratch, rng.normal(0.0, 0.01, 16))]
  error = paired_standard_error(grown, scratch)
  alone = scratch_comparison(np.mean(grown), grown, np.mean(scratch), scratch, 100)
  assert alone.endswith(": growing beat scratch.") and "spread not included" in alone
  spread = scratch_comparison(np.mean(grown), grown, np.mean(scratch), scratch, 100, 0.14)
  assert spread.endswith(f"within noise (|difference| <= 2 x {math.hypot(error, 0.14):.4f}).")
  assert "a seed-to-seed spread of 0.1400 measured for this config" in spread
  wide = scratch_comparison(np.mean(grown) + 0.5, grown, np.mean(scratch), scratch, 100, 0.14)
  assert wide.endswith(": scratch beat growing.")
