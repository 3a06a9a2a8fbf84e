"""Decision records are committed atomically and never rewritten."""

import json
import os

import pytest

from lag_tf.lag.decisions import (DecisionExistsError, commit_decision, config_hash,
                                  decision_path, read_decision)


def test_commit_then_read(tmp_path):
  assert read_decision(str(tmp_path), 0) is None
  path = commit_decision(str(tmp_path), 0, {"winner": "stack", "rule": "lag"})
  assert path == decision_path(str(tmp_path), 0)
  record = read_decision(str(tmp_path), 0)
  assert record["winner"] == "stack" and record["stage"] == 0 and "committed_at" in record
  # No temporary files left behind.
  assert os.listdir(os.path.dirname(path)) == ["stage-0.json"]


def test_never_rewritten(tmp_path):
  commit_decision(str(tmp_path), 1, {"winner": "a"})
  with pytest.raises(DecisionExistsError, match="never rewritten"):
    commit_decision(str(tmp_path), 1, {"winner": "b"})
  assert read_decision(str(tmp_path), 1)["winner"] == "a"


def test_unserializable_record_leaves_nothing(tmp_path):
  with pytest.raises(TypeError):
    commit_decision(str(tmp_path), 2, {"winner": object()})
  assert read_decision(str(tmp_path), 2) is None
  directory = tmp_path / "decisions"
  assert not directory.exists() or os.listdir(directory) == []


def test_config_hash_is_stable():
  assert config_hash("a = 1\n") == config_hash("a = 1\n") != config_hash("a = 2\n")
  assert len(config_hash("x")) == 16
  json.dumps({"h": config_hash("x")})
