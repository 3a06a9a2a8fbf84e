"""The binary: a run writes the model dir; bad input gives one line on stderr and exit 2."""

import os
import subprocess
import sys

import pytest

from trainer_fixtures import TINY_RUN

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(args, data_dir, timeout=240):
  env = dict(os.environ, PYTHONPATH=REPO)
  command = [sys.executable, "-m", "lag_tf.main"] + args + [f"--gin_bindings=DATA_DIR = '{data_dir}'"]
  return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                        timeout=timeout)


def test_a_run_writes_the_model_dir_and_refuses_a_changed_config(tmp_path, data_dir):
  model_dir = tmp_path / "run"
  result = run_main(TINY_RUN + [f"--model_dir={model_dir}"], data_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  names = os.listdir(model_dir)
  for expected in ("config.gin", "operative_config.gin", "metrics.jsonl", "ckpt", "summary.md"):
    assert expected in names
  assert any(n.startswith("events.out.tfevents") for n in names)
  operative = (model_dir / "operative_config.gin").read_text()
  assert "Trainer.train_steps = 20" in operative and "D_MODEL = 32" in operative
  assert "TransformerConfig.d_model = %D_MODEL" in operative

  # Same command again: resumes (nothing to do) and keeps the results.
  again = run_main(TINY_RUN + [f"--model_dir={model_dir}"], data_dir)
  assert again.returncode == 0, again.stderr[-3000:]
  # A different config in the same dir is refused, and nothing is touched.
  before = (model_dir / "metrics.jsonl").read_text()
  changed = run_main(TINY_RUN + [f"--model_dir={model_dir}",
                                 "--gin_bindings=Trainer.train_steps = 30"], data_dir)
  assert changed.returncode == 2
  assert "different config.gin" in changed.stderr.strip().splitlines()[-1]
  assert (model_dir / "metrics.jsonl").read_text() == before


def _last_line(result):
  lines = result.stderr.strip().splitlines()
  assert lines, result.stdout[-2000:]
  return lines[-1]


@pytest.mark.parametrize("extra, message", [
    (["--gin_bindings=Trainner.train_steps = 5"], "did you mean 'Trainer"),
    (["--gin_bindings=Trainer.train_stepz = 5"], "train_stepz"),
    (["--gin_file=gin/experiments/no_such_experiment.gin"], "gin file not found"),
    (["--gin_bindings=TransformerConfig.kind = 'seq2seq'"], "TransformerConfig.kind"),
    (["--gin_bindings=run_experiment.kind = 'dance'"], "run_experiment.kind"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, data_dir, extra, message):
  model_dir = tmp_path / "bad"
  result = run_main(TINY_RUN + extra + [f"--model_dir={model_dir}"], data_dir)
  assert result.returncode == 2, result.stderr[-2000:]
  line = _last_line(result)
  assert line.startswith("error: ") and message in line, line
  assert "Traceback" not in result.stderr


def test_unwritable_model_dir(tmp_path, data_dir):
  blocker = tmp_path / "a_file"
  blocker.write_text("not a directory")
  result = run_main(TINY_RUN + [f"--model_dir={blocker}/run"], data_dir)
  assert result.returncode == 2
  assert "cannot be written" in _last_line(result)
  assert blocker.read_text() == "not a directory"


def test_missing_model_dir_flag(data_dir):
  result = run_main(TINY_RUN, data_dir)
  assert result.returncode == 2 and "--model_dir is required" in _last_line(result)
