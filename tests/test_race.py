"""The sequential race (rule 'race') and the probe budget: the pure rule's looks and stopping
reasons, its worst-case cost, then CI-sized runs (a bad candidate leaves early, a killed race
resumes to the same decision, a budget that cannot fit is refused before anything trains)."""

import os

import numpy as np
import pytest

from lag_tf.lag.probe_cost import (StageCharge, check_probe_budget, probe_evals_bound,
                                   stage_charge)
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import ProbeResult, SelectorRule, race_look, race_segments, select


def _result(name, losses, noise=0.01, seed=0, failed=None, batches=8):
  """losses: {probe step: mean eval loss}; the per-batch losses scatter around it with the
  same offsets for every candidate of a seed (shared held-out batches) plus a little
  candidate-specific noise, as real paired evaluations do."""
  shared = np.random.default_rng(seed).normal(0, 0.2, size=batches)
  own = np.random.default_rng(sum(map(ord, name))).normal(0, noise, size=batches)
  per_batch = {s: list(loss + shared + own - (shared + own).mean()) for s, loss in losses.items()}
  return ProbeResult(name=name, params=100, flops_per_token=1.0, eval_losses=dict(losses),
                     eval_batch_losses=per_batch, failed=failed)


RULE = SelectorRule(rule="race", race_segment_steps=5, race_z=2.5, race_delta=0.02)


def test_looks_start_after_the_rewarmup_and_end_at_k():
  assert race_segments(RULE, 20) == [5, 10, 15, 20]  # No rewarmup: one segment in.
  assert race_segments(RULE, 20, rewarmup_steps=10) == [10, 15, 20]
  assert race_segments(RULE, 12, rewarmup_steps=10) == [10, 12]
  early = SelectorRule(rule="race", race_segment_steps=5, race_first_look=3)
  assert race_segments(early, 12, rewarmup_steps=10) == [3, 8, 12]  # Set: inside the rewarmup.
  assert race_segments(SelectorRule(rule="race", race_segment_steps=30), 20) == [20]


def test_a_clearly_worse_candidate_leaves_and_a_close_one_stays():
  results = {"good": _result("good", {5: 3.00}), "close": _result("close", {5: 3.002}),
             "bad": _result("bad", {5: 3.30})}
  look = race_look(RULE, results, ["good", "close", "bad"], 5)
  assert look.leader == "good"
  assert set(look.dropped) == {"bad"} and "worse by 0.3000" in look.dropped["bad"]
  assert look.survivors == ["good", "close"]


def test_the_race_stops_when_the_rest_are_within_the_indifference_zone():
  results = {"a": _result("a", {10: 3.000}, noise=0.001), "b": _result("b", {10: 3.001},
                                                                       noise=0.001)}
  look = race_look(RULE, results, ["a", "b"], 10)
  assert look.stopped == "indifferent" and look.survivors == ["a", "b"]
  # The same gap with noisy paired differences is not evidence of indifference: b could still be
  # better than a by more than delta.
  noisy = {"a": _result("a", {10: 3.000}, noise=0.05), "b": _result("b", {10: 3.001},
                                                                    noise=0.05)}
  assert race_look(RULE, noisy, ["a", "b"], 10).stopped is None


def test_one_left_and_failed_candidates():
  results = {"a": _result("a", {5: 3.0}), "nan": _result("nan", {5: float("nan")}),
             "broken": _result("broken", {}, failed="training loss is nan at step 3")}
  look = race_look(RULE, results, ["a", "nan", "broken"], 5)
  assert look.stopped == "one_left" and look.survivors == ["a"]
  assert look.dropped["broken"].startswith("failed (training loss is nan")
  assert look.dropped["nan"].startswith("failed")


def test_select_takes_the_survivors_at_the_last_look():
  results = {"a": _result("a", {5: 3.0, 10: 2.80}), "b": _result("b", {5: 3.0, 10: 2.81}),
             "c": _result("c", {5: 2.95})}  # Left at 5 (pretend), never probed to 10.
  decision = select(RULE, results)
  assert decision.eliminated == ["c"] and decision.winner == "a"


def test_worst_case_cost_and_evaluations():
  # 4 candidates, k = 20, evaluations at 0 and 20: a race also looks at 5, 10 and 15 (with a
  # 10-step rewarmup, at 10 and 15).
  assert probe_evals_bound(SelectorRule(rule="lag"), 20, [0, 20], 4) == 8
  assert probe_evals_bound(RULE, 20, [0, 20], 4) == 4 * 5
  assert probe_evals_bound(RULE, 20, [0, 20], 4, rewarmup_steps=10) == 4 * 4
  assert probe_evals_bound(RULE, 20, [0, 20], 1) == 0  # A pool of one decides nothing.
  # Halving, 4 candidates, eta 2: rungs 10 and 20; 4 x (0, 10) then 2 x (20).
  halving = SelectorRule(rule="successive_halving", halving_eta=2)
  assert probe_evals_bound(halving, 20, [0, 20], 4) == 4 * 2 + 2 * 1
  # The worst case (no budget): those evaluations and every candidate's steps.
  schedule = ProbeSchedule(probe_steps=20, eval_steps=(0, 20), rewarmup_steps=0)
  assert stage_charge(halving, schedule, 4, 20, 3.0, 1.0, None) == StageCharge(
      stop_step=20, candidate_steps=4 * 10 + 2 * 10, evals=10, continue_steps=0)
  assert stage_charge(RULE, schedule, 4, 20, 3.0, 1.0, None) == StageCharge(
      stop_step=20, candidate_steps=4 * 20, evals=20, continue_steps=0)


def test_a_plan_charges_a_race_its_costliest_end_within_its_budget():
  """stage_charge: every candidate to k without a budget; with one, the look whose
  min(everyone to it, budget) + the winner's rest costs most (the quickstart's shape: 10
  candidates, k=30, looks at 10, 15, 20, 25, 30; one step and one evaluation cost 1)."""
  schedule = ProbeSchedule(probe_steps=30, eval_steps=(0,), rewarmup_steps=10)
  full = stage_charge(RULE, schedule, 10, 430, 1.0, 1.0, None)
  assert full == StageCharge(stop_step=30, candidate_steps=300, evals=60, continue_steps=400)
  # Look 15 costs 150 steps + 30 evals > 154.8: its charge is the budget (124 steps + 30
  # evals), plus 415 steps of the winner; look 20 (114 + 40 + 410) costs less, look 25 cannot
  # be reached (104 steps < everyone to 10, then the winner alone to 25).
  capped = stage_charge(RULE, schedule, 10, 430, 1.0, 1.0, 0.36 * 430)
  assert capped == StageCharge(stop_step=15, candidate_steps=124, evals=30, continue_steps=415)
  assert capped.training_flops(1.0) + capped.evals < full.training_flops(1.0) + full.evals
  # Other rules never stop early: their charge is the run's.
  lag = SelectorRule(rule="lag")
  assert stage_charge(lag, schedule, 10, 430, 1.0, 1.0, 0.36 * 430) == StageCharge(
      30, 300, 20, 400)


def test_budget_refusal_names_the_share():
  rule = SelectorRule(rule="lag", probe_budget_share=0.1)
  check_probe_budget(rule, 9.0, 100.0, 1.0, "stage 1")  # Fits.
  with pytest.raises(ValueError, match=r"stage 1: the probes need .*probe_budget_share=0.1"):
    check_probe_budget(rule, 11.0, 100.0, 1.0, "stage 1")
  # A race only needs its first look to fit: it stops when the next one would not.
  race = SelectorRule(rule="race", probe_budget_share=0.1)
  check_probe_budget(race, 50.0, 100.0, 9.0, "stage 1")
  with pytest.raises(ValueError):
    check_probe_budget(race, 50.0, 100.0, 11.0, "stage 1")


# ---- CI-sized runs ---------------------------------------------------------------------------

RACE_BINDINGS = ["ProbeSchedule.probe_steps = 12", "ProbeSchedule.eval_steps = (0,)",
                 "ProbeSchedule.rewarmup_steps = 3", "SelectorRule.rule = 'race'",
                 "SelectorRule.race_segment_steps = 3"]


def _race_run(model_dir, data_dir, pool, extra=()):
  from lag_tf.experiments.registry import lag_experiment
  from lag_fixtures import BASE_STEPS, parse_lag_config, strategy
  parse_lag_config(data_dir, RACE_BINDINGS + list(extra))
  return lag_experiment(strategy(), model_dir, pool=pool, base_steps=BASE_STEPS,
                        continue_steps=2)


@pytest.fixture
def nan_operator():
  from lag_fixtures import register_nan_operator, unregister_nan_operator
  register_nan_operator()
  yield
  unregister_nan_operator()


def test_race_drops_a_bad_candidate_early_and_records_why(tmp_path, data_dir, nan_operator):
  from lag_fixtures import small_pool
  from lag_tf.model_dir_store import read_decision
  result = _race_run(str(tmp_path), data_dir, small_pool(with_nan=True))
  record = read_decision(str(tmp_path), 0)
  assert record.rule == "race" and record.winner == result["winner"] != "poisoned"
  assert record.race["stopped"] in ("one_left", "indifferent", "probe_steps")
  # The poisoned candidate fails in its first segment and leaves at the first look.
  assert record.race["left"]["poisoned"]["step"] == 3
  assert record.candidates["poisoned"].probe_steps_trained <= 3
  looks = [look["step"] for look in record.race["looks"]]
  assert looks == race_segments(SelectorRule(rule="race", race_segment_steps=3), 12)[
      :len(looks)]
  # Every evaluation the decision read is charged: step 0 and every look each candidate reached.
  for name, outcome in record.candidates.items():
    if name != "poisoned":
      assert outcome.probe_evals == 1 + outcome.probe_steps_trained // 3
      assert outcome.probe_eval_flops > 0
  assert record.probe_eval_flops == pytest.approx(
      sum(c.probe_eval_flops for c in record.candidates.values()))
  # The recorded compute holds every step the winner trained: its probe (in "probes", however
  # early the race stopped) and the rest of the 12 + 2 steps after growth (the continuation).
  winner = record.candidates[record.winner]
  assert result["steps"] - record.growth_step == 14
  assert result["flops"]["continuation"] == (
      (14 - winner.probe_steps_trained) * record.tokens_per_step * winner.flops_per_token)
  summary = (tmp_path / "summary.md").read_text()
  assert "race: stopped" in summary and "decision evaluations" in summary
  assert "deciding (probes and their evaluations) took" in summary
  # The analysis report says how the race ran and which candidates tied, as summary.md does.
  from lag_tf.analysis.report import build_report
  build_report(str(tmp_path))
  report = (tmp_path / "report" / "report.md").read_text()
  race_line = next(line for line in report.splitlines() if line.startswith("Race: stopped ("))
  assert f") at probe step {record.race['at_step']} of 12; left the race: " in race_line
  assert "poisoned at 3" in report
  for name in record.tied_with:
    if name != record.winner:
      assert "Tied with the winner" in report and name in report


def test_a_killed_race_resumes_to_the_same_decision(tmp_path, data_dir):
  """The job dies after the first look (simulated: every candidate probed to the first segment
  alone, as a killed job leaves them); the rerun replays the looks and decides as an
  uninterrupted race does."""
  from lag_fixtures import BASE_STEPS, parse_lag_config, small_pool, strategy
  from lag_tf.data import LanguageModelingData
  from lag_tf.growth import validate_pool
  from lag_tf.model_dir_store import read_decision
  from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
  from lag_tf.lag.schedule import ProbeSchedule
  from lag_tf.models import TransformerConfig
  from lag_tf.training.trainer import Trainer
  whole = str(tmp_path / "whole")
  _race_run(whole, data_dir, small_pool())
  expected = read_decision(whole, 0)

  killed = str(tmp_path / "killed")
  parse_lag_config(data_dir, RACE_BINDINGS)
  pool = small_pool()
  base = Trainer(TransformerConfig(), LanguageModelingData(), strategy(), killed,
                 train_steps=BASE_STEPS, name="base")
  base.train()
  point = GrowthPoint.from_trainer(base)
  targets = validate_pool(pool, TransformerConfig())
  trainers = CandidateTrainers(point, LanguageModelingData(), strategy(), ProbeSchedule(), 14)
  for name in pool.names:
    trainers.probe(pool[name], targets[name], os.path.join(killed, "candidates", name), 3)
  del trainers, base
  _race_run(killed, data_dir, pool)
  again = read_decision(killed, 0)
  assert again.winner == expected.winner
  assert again.race == expected.race
  for name, outcome in expected.candidates.items():
    assert again.candidates[name].eval_losses == pytest.approx(outcome.eval_losses,
                                                               abs=1e-5), name


def test_a_budget_that_cannot_fit_is_refused_before_training(tmp_path, data_dir):
  from lag_fixtures import small_pool
  with pytest.raises(ValueError, match="probe_budget_share=0.05"):
    _race_run(str(tmp_path), data_dir, small_pool(),
              ["SelectorRule.rule = 'lag'", "SelectorRule.probe_budget_share = 0.05"])
  assert not (tmp_path / "metrics.jsonl").exists() and not (tmp_path / "ckpt").exists()


def test_a_race_stops_when_its_next_look_would_not_fit_the_budget(tmp_path, data_dir):
  """First look: 3 candidates x (3 steps + 2 evaluations of 4 batches) ~ 1.2 x the 14-step
  stage; the second would bring it to ~2 x. A budget of 1.5 x the stage allows one look."""
  from lag_fixtures import small_pool
  from lag_tf.model_dir_store import read_decision
  _race_run(str(tmp_path), data_dir, small_pool(),
            ["SelectorRule.probe_budget_share = 1.5", "SelectorRule.race_delta = 0.0"])
  record = read_decision(str(tmp_path), 0)
  assert record.race["stopped"] == "budget" and record.race["at_step"] == 3
  assert [look["step"] for look in record.race["looks"]] == [3]
  assert record.probe_cost_flops + record.probe_eval_flops <= record.probe_budget_flops
  assert all(c.probe_steps_trained == 3 for c in record.candidates.values())
