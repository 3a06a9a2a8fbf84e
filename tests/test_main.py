"""The binary: a run writes the model dir and refuses a changed config; missing or unwritable
model dirs give one line on stderr and exit 2.

In this process (lag_tf.main's main; TensorFlow imported once): the child process is under test
in tests/test_resume.py (signals), tests/test_bad_input.py (the 2-CPU row) and
tests/test_launch_multi_worker.py; the bad-input table is tests/test_bad_input.py.
"""

import os

from main_fixtures import run_main_in_process
from trainer_fixtures import TINY_RUN


def _main(args, data_dir, capsys, monkeypatch):
  return run_main_in_process(args + [f"--gin_bindings=DATA_DIR = '{data_dir}'"], capsys,
                             monkeypatch)


def test_a_run_writes_the_model_dir_and_refuses_a_changed_config(tmp_path, data_dir, capsys,
                                                                 monkeypatch):
  model_dir = tmp_path / "run"
  code, _, err = _main(TINY_RUN + [f"--model_dir={model_dir}"], data_dir, capsys, monkeypatch)
  assert code == 0, err[-3000:]
  names = os.listdir(model_dir)
  for expected in ("config.gin", "operative_config.gin", "metrics.jsonl", "ckpt", "summary.md"):
    assert expected in names
  assert any(n.startswith("events.out.tfevents") for n in names)
  operative = (model_dir / "operative_config.gin").read_text()
  assert "Trainer.train_steps = 20" in operative and "D_MODEL = 32" in operative
  assert "TransformerConfig.d_model = %D_MODEL" in operative

  # Same command again: resumes (nothing to do) and keeps the results.
  before = (model_dir / "metrics.jsonl").read_text()
  code, _, err = _main(TINY_RUN + [f"--model_dir={model_dir}"], data_dir, capsys, monkeypatch)
  assert code == 0, err[-3000:]
  assert (model_dir / "metrics.jsonl").read_text() == before
  # A different config in the same dir is refused, and nothing is touched.
  code, _, err = _main(TINY_RUN + [f"--model_dir={model_dir}",
                                   "--gin_bindings=Trainer.train_steps = 30"], data_dir, capsys,
                       monkeypatch)
  assert code == 2
  assert "different config.gin" in err.strip().splitlines()[-1]
  assert (model_dir / "metrics.jsonl").read_text() == before


def _last_line(err):
  lines = err.strip().splitlines()
  assert lines
  return lines[-1]


def test_unwritable_model_dir(tmp_path, data_dir, capsys, monkeypatch):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  code, _, err = _main(TINY_RUN + [f"--model_dir={blocker}/run"], data_dir, capsys, monkeypatch)
  assert code == 2
  assert "cannot be written" in _last_line(err)
  assert blocker.read_text() == "not a directory"


def test_missing_model_dir_flag(data_dir, capsys, monkeypatch):
  code, _, err = _main(TINY_RUN, data_dir, capsys, monkeypatch)
  assert code == 2 and "--model_dir is required" in _last_line(err)
