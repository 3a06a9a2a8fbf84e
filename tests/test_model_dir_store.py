"""The model-dir store: where lag_tf's files are, read and written as typed records; decisions
are committed atomically and never rewritten."""

import math
import os

import pytest

from lag_tf import model_dir_store as store
from lag_tf.records import (CandidateInfo, CandidateOutcome, DecisionRecord, GrowthRecord,
                            latest_per_step)


def _decision(stage, winner="stack"):
  return DecisionRecord(
      stage=stage, winner=winner, rule="lag", ranking=[winner, "zero_top"],
      candidates={winner: CandidateOutcome(eval_losses={0: 3.5, 6: 3.1}, score=3.1,
                                           probe_steps_trained=6, probe_flops=1e9),
                  "zero_top": CandidateOutcome(status="failed", failed="loss is nan at step 4")},
      probe_steps=6, eval_steps=[0, 6], growth_step=20, config_hash="abc")


def test_a_committed_decision_reads_back_as_the_same_record(tmp_path):
  model_dir = str(tmp_path)
  assert store.read_decision(model_dir, 0) is None
  record = _decision(0)
  path = store.commit_decision(model_dir, record)
  assert path == store.decision_path(model_dir, 0) == str(tmp_path / "decisions" / "stage-0.json")
  read = store.read_decision(model_dir, 0)
  assert read.committed_at is not None
  assert read == DecisionRecord(**dict(vars(record), committed_at=read.committed_at))
  assert os.listdir(os.path.dirname(path)) == ["stage-0.json"]  # No temporary files left.


def test_a_decision_is_never_rewritten(tmp_path):
  store.commit_decision(str(tmp_path), _decision(1, "a"))
  with pytest.raises(store.DecisionExistsError, match="never rewritten"):
    store.commit_decision(str(tmp_path), _decision(1, "b"))
  assert store.read_decision(str(tmp_path), 1).winner == "a"


def test_an_unserializable_record_leaves_nothing(tmp_path):
  with pytest.raises(TypeError):
    store.commit_decision(str(tmp_path), DecisionRecord(stage=2, winner=object()))
  assert store.read_decision(str(tmp_path), 2) is None
  assert store.committed_stages(str(tmp_path)) == []


def test_committed_stages_are_in_numeric_order(tmp_path):
  for stage in (10, 2, 1):
    store.commit_decision(str(tmp_path), _decision(stage))
  (tmp_path / "decisions" / "notes.txt").write_text("not a decision")
  assert store.committed_stages(str(tmp_path)) == [1, 2, 10]
  assert [d.stage for d in store.read_decisions(str(tmp_path))] == [1, 2, 10]
  assert store.committed_stages(str(tmp_path / "absent")) == []


def test_a_damaged_decision_is_a_one_line_error(tmp_path):
  os.makedirs(tmp_path / "decisions")
  (tmp_path / "decisions" / "stage-0.json").write_text('{"winner": "st')
  with pytest.raises(store.ModelDirError, match="stage-0.json is not a JSON decision record"):
    store.read_decision(str(tmp_path), 0)


def test_candidate_info_round_trip(tmp_path):
  candidate = store.candidate_dir(store.stage_dir(str(tmp_path), 2), "stack")
  assert candidate == str(tmp_path / "stage-2" / "candidates" / "stack")
  assert store.read_candidate_info(candidate) is None
  info = CandidateInfo(name="stack", params=1234, flops_per_token=6e3, tokens_per_step=256,
                       growth_step=20, eval_tokens=1024, candidate={"depth": "stack_layers"},
                       config={"num_layers": 4})
  store.write_candidate_info(candidate, info)
  assert store.read_candidate_info(candidate) == info
  assert store.candidate_names(store.stage_dir(str(tmp_path), 2)) == ["stack"]


def test_failed_marker(tmp_path):
  candidate = store.candidate_dir(str(tmp_path), "poisoned")
  os.makedirs(candidate)
  assert store.read_failure(candidate) is None
  store.mark_failed(candidate, "training loss is nan at step 14")
  assert store.read_failure(candidate) == "training loss is nan at step 14"
  with open(store.failed_marker_path(candidate), "w"):  # A marker with no reason still counts.
    pass
  assert store.read_failure(candidate) == "failed (no reason recorded)"


def test_growth_record_round_trip(tmp_path):
  assert store.read_growth(str(tmp_path)) is None
  record = GrowthRecord(candidate="stack", step=20, grown_config={"num_layers": 4})
  store.write_growth(str(tmp_path), record)
  assert store.read_growth(str(tmp_path)) == record


def test_stage_and_seed_dirs(tmp_path):
  model_dir = str(tmp_path)
  assert store.stage_dir(model_dir, 0) == model_dir
  assert store.stage_dir(model_dir, 3) == str(tmp_path / "stage-3")
  for seed in (1, 0):
    os.makedirs(store.seed_dir(model_dir, seed))
  os.makedirs(tmp_path / "seedless")
  assert store.seed_dirs(model_dir) == {"0": str(tmp_path / "seed-0"),
                                        "1": str(tmp_path / "seed-1")}


def test_metrics_rows_are_typed_and_in_file_order(tmp_path):
  """Every record as written (a step logged twice stays twice: the resume tests count them),
  lines that are no record skipped, a cut last line too; NaN/Inf strings read as floats."""
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 0, "eval_loss": 5.0, "eval_batch_losses": [4.9, "nan"]}\n'
                  'a note\n["step", 1]\n{"step": "2", "loss": 1.0}\n'
                  '{"step": 5, "loss": "inf", "examples_seen": 40, "from_a_newer_lag_tf": 1}\n'
                  '{"step": 5, "loss": 3.0, "learning_rate": 0.001}\n{"step": 10, "lo')
  rows = store.read_metrics(str(path))
  assert [r.step for r in rows] == [0, 5, 5]
  assert rows[0].eval_loss == 5.0 and rows[0].loss is None and rows[0].learning_rate is None
  assert rows[0].eval_batch_losses[0] == 4.9 and math.isnan(rows[0].eval_batch_losses[1])
  assert rows[1].loss == math.inf and rows[1].examples_seen == 40 and rows[1].eval_loss is None
  assert [(r.step, r.loss) for r in latest_per_step(rows)] == [(0, None), (5, 3.0)]
  assert store.read_metrics(str(tmp_path / "absent.jsonl")) == []
