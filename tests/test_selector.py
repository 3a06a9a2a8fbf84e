"""Selector rules, noise-aware ties, failed candidates, successive halving (pure)."""

import math

import numpy as np
import pytest

from lag_tf.lag.selector import (ProbeResult, SelectorRule, halving_rungs, halving_survivors,
                                 paired_standard_error, select)


def _result(name, losses, params=100, flops=1.0, batch_noise=None, seed=0, failed=None):
  """losses: {probe step: loss}; per-batch losses scatter around the loss (mean preserved)."""
  rng = np.random.default_rng(seed)
  batch_losses = {}
  if batch_noise is not None:
    for step, loss in losses.items():
      offsets = rng.normal(0, batch_noise, size=8)
      batch_losses[step] = list(loss + offsets - offsets.mean())
  return ProbeResult(name=name, params=params, flops_per_token=flops, eval_losses=dict(losses),
                     eval_batch_losses=batch_losses, failed=failed)


def test_init_loss_and_lag_disagree_as_in_the_paper():
  # 'preserving' is best at init but learns slowly; 'stacked' starts worse and ends best.
  results = {"preserving": _result("preserving", {0: 3.0, 10: 2.9, 20: 2.8}),
             "stacked": _result("stacked", {0: 4.0, 10: 2.7, 20: 2.5})}
  assert select(SelectorRule(rule="init_loss"), results).winner == "preserving"
  decision = select(SelectorRule(rule="lag"), results)
  assert decision.winner == "stacked"
  assert decision.ranking == ["stacked", "preserving"]
  assert decision.score_steps == [20]


def test_lag_average_last_m():
  results = {"a": _result("a", {0: 5, 10: 1.0, 20: 3.0}), "b": _result("b", {0: 5, 10: 2.5, 20: 2.5})}
  assert select(SelectorRule(rule="lag"), results).winner == "b"
  decision = select(SelectorRule(rule="lag", average_last=2), results)
  assert decision.winner == "a" and decision.scores["a"] == pytest.approx(2.0)


def test_failed_candidates_never_win():
  results = {"nan": _result("nan", {0: 1.0, 10: float("nan")}),
             "inf": _result("inf", {0: 1.0, 10: float("inf")}),
             "marked": _result("marked", {0: 0.1, 10: 0.1}, failed="loss is nan at step 3"),
             "ok": _result("ok", {0: 5.0, 10: 4.0})}
  decision = select(SelectorRule(rule="lag"), results)
  assert decision.winner == "ok"
  assert set(decision.failed) == {"nan", "inf", "marked"}
  assert decision.failed["marked"] == "loss is nan at step 3"
  assert decision.ranking[0] == "ok" and decision.scores["nan"] is None


def test_all_failed_is_an_error():
  with pytest.raises(RuntimeError, match="every candidate failed"):
    select(SelectorRule(), {"a": _result("a", {0: math.nan})})


def test_ties_within_noise_go_to_the_cheaper_candidate():
  results = {"big": _result("big", {0: 3.0, 10: 2.000}, params=200, batch_noise=0.2, seed=1),
             "small": _result("small", {0: 3.0, 10: 2.001}, params=100, batch_noise=0.2, seed=2)}
  decision = select(SelectorRule(rule="lag", tie_z=1.0), results)
  assert decision.winner == "small"
  assert decision.tie_broken_by_cost and decision.tied_with == ["big", "small"]
  # Ties off: the lower score wins.
  assert select(SelectorRule(rule="lag", tie_z=0.0), results).winner == "big"


def test_a_clear_gap_is_not_a_tie():
  results = {"big": _result("big", {10: 2.0}, params=200, batch_noise=0.01, seed=1),
             "small": _result("small", {10: 2.5}, params=100, batch_noise=0.01, seed=2)}
  decision = select(SelectorRule(rule="lag"), results)
  assert decision.winner == "big" and not decision.tie_broken_by_cost and not decision.tied_with


def test_paired_standard_error():
  a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 3.5, 4.0])
  differences = a - b
  expected = np.std(differences, ddof=1) / 2.0
  assert paired_standard_error(a, b) == pytest.approx(expected)
  assert paired_standard_error(a[:1], b[:1]) == 0.0


def test_halving_rungs_and_survivors():
  rule = SelectorRule(rule="successive_halving", halving_eta=2)
  assert halving_rungs(rule, 40, 8) == [10, 20, 40]
  assert halving_rungs(rule, 40, 6) == [10, 20, 40]
  assert halving_rungs(rule, 40, 1) == [40]
  assert halving_rungs(SelectorRule(rule="successive_halving", halving_eta=3), 90, 9) == [30, 90]
  results = {f"c{i}": _result(f"c{i}", {0: 5.0, 10: 5.0 - i}) for i in range(6)}
  assert halving_survivors(rule, results, up_to=10) == ["c5", "c4", "c3"]


def test_successive_halving_decision_only_compares_finalists():
  rule = SelectorRule(rule="successive_halving")
  results = {"early": _result("early", {0: 4.0, 10: 1.0}),     # eliminated at rung 10 (in reality)
             "final_a": _result("final_a", {0: 4.0, 10: 2.0, 20: 1.5}),
             "final_b": _result("final_b", {0: 4.0, 10: 2.1, 20: 1.4})}
  decision = select(rule, results)
  assert decision.winner == "final_b"
  assert decision.eliminated == ["early"]
  assert decision.ranking == ["final_b", "final_a", "early"]


def test_rule_validation():
  with pytest.raises(ValueError, match="rule"):
    SelectorRule(rule="best")
  with pytest.raises(ValueError, match="average_last"):
    SelectorRule(average_last=0)
