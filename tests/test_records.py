"""Records are types: what the files say round-trips through the dataclasses unchanged, and files
written by older versions (fields missing, NaN as strings, a list of rung lengths) still read."""

import json
import math

from lag_tf.records import (CandidateInfo, CandidateOutcome, DecisionRecord, GrowthRecord,
                            config_hash)

# As lag/stage.py writes it (keys sorted by json.dumps; probe steps are strings in JSON).
WRITTEN = {
    "stage": 1, "rule": "lag", "winner": "copy_top", "ranking": ["copy_top", "zero_top"],
    "tied_with": ["copy_top"], "tie_broken_by_cost": False, "score_steps": [4, 6],
    "probe_steps": 6, "eval_steps": [0, 2, 4, 6], "growth_step": 10,
    "growth_examples_seen": 80, "tokens_per_step": 256, "probe_cost_steps": 12,
    "probe_cost_flops": 3.5e9, "probe_eval_flops": 0.8e9, "probe_budget_flops": None,
    "race": {}, "config_hash": "0123456789abcdef",
    "committed_at": "2026-11-30T07:00:00Z",
    "candidates": {
        "copy_top": {"status": "ok", "failed": None, "eval_losses": {"0": 3.1, "6": 2.9},
                     "score": 2.91, "params": 1000, "flops_per_token": 6000.0,
                     "probe_steps_trained": 6, "probe_flops": 1.5e9, "probe_evals": 2,
                     "probe_eval_flops": 0.5e9, "left_race_at": None,
                     "function_preserving": False, "candidate": {"name": "copy_top"},
                     "config": {"num_layers": 2}},
        "zero_top": {"status": "failed", "failed": "training loss is nan at step 14",
                     "eval_losses": {"0": 3.0, "2": "nan"}, "score": None, "params": 1000,
                     "flops_per_token": 6000.0, "probe_steps_trained": 4,
                     "probe_flops": 2.0e9, "probe_evals": 1, "probe_eval_flops": 0.3e9,
                     "left_race_at": None, "function_preserving": True,
                     "candidate": {"name": "zero_top"}, "config": {"num_layers": 2}},
    },
}


def test_a_written_decision_round_trips_unchanged():
  record = DecisionRecord.from_json(WRITTEN)
  assert record.winner == "copy_top" and record.stage == 1 and record.k == 6
  assert record.candidates["copy_top"].eval_losses == {0: 3.1, 6: 2.9}  # int probe steps.
  assert math.isnan(record.candidates["zero_top"].eval_losses[2])
  assert record.losing_probe_steps == 4
  assert record.probe_evals == 3
  assert record.probe_cost_flops + record.probe_eval_flops == 3.5e9 + 0.8e9
  again = record.to_json()
  again["candidates"]["zero_top"]["eval_losses"]["2"] = "nan"  # NaN != NaN; compare the rest.
  assert json.dumps(again, sort_keys=True) == json.dumps(WRITTEN, sort_keys=True)


def test_an_older_record_still_reads():
  old = {"winner": "stack", "rule": "lag", "probe_steps": [3, 6],
         "candidates": {"stack": {"eval_losses": {"0": 3.0, "3": 2.8, "6": 2.7}},
                        "noise": {"eval_losses": {"0": 3.2, "3": 3.0}, "status": "eliminated"}},
         "some_future_field": 1}
  record = DecisionRecord.from_json(old, stage=0)
  assert record.stage == 0 and record.probe_steps == 6 and record.committed_at is None
  assert record.candidates["stack"].status == "ok"
  assert record.candidates["noise"].loss_at_or_before(6) == 3.0
  assert record.probe_cost_flops == 0.0
  # Records before 2026-12 did not charge the decision's evaluations: they read as 0.
  assert record.probe_eval_flops == 0.0 and record.probe_evals == 0 and record.race == {}
  # Without probe_steps, k is the largest probe step any candidate reached.
  assert DecisionRecord.from_json({"winner": "a", "candidates": {
      "a": {"eval_losses": {"0": 1.0, "5": 0.5}}}}).k == 5


def test_candidate_info_and_growth_record_round_trip():
  info = CandidateInfo(name="stack", params=10, flops_per_token=6.0, tokens_per_step=4,
                       function_preserving=True, growth_step=3, candidate={"name": "stack"},
                       config={"num_layers": 4})
  assert CandidateInfo.from_json(json.loads(json.dumps(info.to_json()))) == info
  assert info.flops_per_step == 24.0
  assert math.isnan(CandidateInfo.from_json(None).flops_per_step)  # No candidate.json.
  growth = GrowthRecord(candidate="stack", step=100, params_before=1, params_after=2,
                        base_eval_loss=3.0, grown_eval_loss=3.0)
  assert GrowthRecord.from_json(json.loads(json.dumps(growth.to_json()))) == growth


def test_outcome_defaults_for_a_candidate_that_never_ran():
  outcome = CandidateOutcome.from_json({})
  assert outcome.status == "ok" and outcome.eval_losses == {} and outcome.probe_flops == 0.0
  assert math.isnan(outcome.loss_at_or_before(10))


def test_config_hash_is_stable():
  assert config_hash("a = 1\n") == config_hash("a = 1\n") != config_hash("a = 2\n")
  assert len(config_hash("x")) == 16
  json.dumps({"h": config_hash("x")})
