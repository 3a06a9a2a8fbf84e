"""Files lag_tf did not write are never touched: a foreign dir is refused (exit 2),
--allow_non_empty writes beside the user's files, and a metrics.jsonl repair that would drop
anything but a cut last line or lag_tf's own later records keeps the original beside it."""

import inspect
import os

import pytest

from lag_tf import dir_ownership
from lag_tf import model_dir_store as store
from lag_tf.model_dir_store import read_metrics
from lag_tf.records import MetricsRow
from lag_tf.training.metrics import MetricsLogger
from main_fixtures import run_main_in_process, snapshot as _snapshot
from trainer_fixtures import TINY_RUN as TINY

USER_FILES = {"notes.txt": b"my results\n", "data/table.csv": b"a,b\n1,2\n",
              "events.csv": b"not tensorboard\n"}


def _write_user_files(directory):
  for name, data in USER_FILES.items():
    path = os.path.join(directory, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
      f.write(data)


def test_empty_missing_and_lag_tf_dirs_are_accepted(tmp_path):
  dir_ownership.check_model_dir_owner(str(tmp_path / "missing"))
  dir_ownership.check_model_dir_owner(str(tmp_path))
  (tmp_path / "run.lock").write_text("{}")  # A run that is starting: lag_tf's own file.
  dir_ownership.check_model_dir_owner(str(tmp_path))
  (tmp_path / "notes.txt").write_text("x")
  (tmp_path / "config.gin").write_text("Trainer.train_steps = 1\n")  # A lag_tf run: resumed.
  dir_ownership.check_model_dir_owner(str(tmp_path))


def test_foreign_dir_is_refused_unless_allowed_and_without_clashes(tmp_path):
  _write_user_files(str(tmp_path))
  with pytest.raises(dir_ownership.ForeignDirError, match="holds no lag_tf run.*data, "
                     "events.csv, notes.txt"):
    dir_ownership.check_model_dir_owner(str(tmp_path))
  dir_ownership.check_model_dir_owner(str(tmp_path), allow_non_empty=True)
  for clash in ("metrics.jsonl", "summary.md", "ckpt", "config.gin.1"):
    (tmp_path / clash).write_text("mine")
    with pytest.raises(dir_ownership.ForeignDirError, match=f"holds {clash}, not written"):
      dir_ownership.check_model_dir_owner(str(tmp_path), allow_non_empty=True)
    (tmp_path / clash).unlink()


def test_allow_non_empty_trains_beside_user_files_without_touching_them(tmp_path, data_dir, capsys,
                                                                         monkeypatch):
  model_dir = str(tmp_path / "mine")
  _write_user_files(model_dir)
  before = _snapshot(model_dir)
  argv = TINY + [f"--gin_bindings=DATA_DIR = '{data_dir}'", f"--model_dir={model_dir}",
                 "--gin_bindings=Trainer.train_steps = 10", "--allow_non_empty"]
  code, _, err = run_main_in_process(argv, capsys, monkeypatch)
  assert code in (None, 0), err[-2000:]
  after = _snapshot(model_dir)
  assert {name: after[name] for name in before} == before
  assert "config.gin" in after and [r.step for r in read_metrics(
      os.path.join(model_dir, "metrics.jsonl"))] == [0, 10]
  # The rerun is a lag_tf run now: resumed without the flag, user files still untouched.
  code, _, err = run_main_in_process(argv[:-1], capsys, monkeypatch)
  assert code in (None, 0), err[-2000:]
  assert {name: _snapshot(model_dir)[name] for name in before} == before


def test_a_cut_last_line_is_dropped_but_a_whole_foreign_line_is_kept_beside(tmp_path):
  path = tmp_path / "metrics.jsonl"
  # A killed append: a prefix of a record. Dropped, no copy needed.
  path.write_text('{"step": 0, "loss": 5.0}\n{"step": 5, "lo')
  MetricsLogger(str(tmp_path)).truncate_after(5)
  assert path.read_text() == '{"step": 0, "loss": 5.0}\n'
  assert not list(tmp_path.glob("metrics.jsonl.orig-*"))
  # A whole line that is no lag_tf record (no newline at the end, as a user might leave it):
  # not a "cut line"; the original is kept byte-identical beside the repaired file.
  original = '{"step": 0, "loss": 5.0}\n{"run": "mine", "score": 0.93}'
  path.write_text(original)
  MetricsLogger(str(tmp_path)).truncate_after(5)
  assert path.read_text() == '{"step": 0, "loss": 5.0}\n'
  assert (tmp_path / "metrics.jsonl.orig-1").read_text() == original
  assert read_metrics(str(tmp_path / "metrics.jsonl.orig-1")) == [MetricsRow(step=0, loss=5.0)]


def test_a_garbled_middle_line_is_kept_beside_and_later_records_are_resumed(tmp_path):
  path = tmp_path / "metrics.jsonl"
  original = '{"step": 0, "loss": 5.0}\nGARBLED\n{"step": 5, "loss": 4.0}\n{"step": 9, "loss": 3.0}\n'
  path.write_text(original)
  MetricsLogger(str(tmp_path)).truncate_after(5)
  assert path.read_text() == '{"step": 0, "loss": 5.0}\n{"step": 5, "loss": 4.0}\n'
  assert (tmp_path / "metrics.jsonl.orig-1").read_text() == original
  # Only lag_tf's own later records: dropped (recomputed on resume), no copy.
  path.write_text('{"step": 0, "loss": 5.0}\n{"step": 9, "loss": 3.0}\n')
  MetricsLogger(str(tmp_path)).truncate_after(5)
  assert not (tmp_path / "metrics.jsonl.orig-2").exists()


def _store_paths(model_dir):
  """Every path a model_dir_store path function gives for the model dir itself (a run dir, a
  stage or seed dir: the model dir is each), found by name so a new one is checked too."""
  arguments = {"stage": 1, "seed": 0, "name": "candidate"}
  paths = []
  for name, function in inspect.getmembers(store, inspect.isfunction):
    if function.__module__ != store.__name__ or not name.endswith(("_dir", "_path")):
      continue
    first, *rest = inspect.signature(function).parameters
    if first in ("model_dir", "run_dir", "directory"):
      paths.append(function(model_dir, *[arguments[p] for p in rest]))
  return paths


def test_every_top_level_name_the_store_lays_out_is_lag_tfs_own(tmp_path):
  model_dir = str(tmp_path)
  names = {os.path.relpath(path, model_dir).split(os.sep)[0] for path in _store_paths(model_dir)}
  assert {"scratch", "grown", "decisions", "stage-1", "seed-0", "report", "metrics.jsonl",
          "ckpt", "candidates", "summary.md", "growth.json"} <= names
  for name in sorted(names):
    (tmp_path / name).write_text("mine")
    with pytest.raises(dir_ownership.ForeignDirError, match=f"holds {name}, not written"):
      dir_ownership.check_model_dir_owner(model_dir, allow_non_empty=True)
    (tmp_path / name).unlink()
