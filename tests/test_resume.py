"""Preemption and crashes: SIGTERM stops with a checkpoint and exit 143, kill -9 at any moment
leaves a resumable dir, and in deterministic mode the resumed run logs exactly the metrics of
an uninterrupted one (every step once, losses equal within 1e-6).

The binary runs as a subprocess (signals need a process); the in-process tests fake the
leftovers of a kill at the worst moments (a cut metrics line, a half-written checkpoint, an
uncommitted decision temp file).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lag_tf import model_dir_store
from lag_tf.records import DecisionRecord
from lag_tf.model_dir_store import read_metrics
from lag_tf.training.metrics import MetricsLogger
from trainer_fixtures import tiny_trainer

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 300
RUN = [
    "--gin_file=gin/experiments/quickstart.gin",
    "--gin_bindings=include 'data/stdlib_corpus_small.gin'",
    "--gin_bindings=SEQUENCE_LENGTH = 32", "--gin_bindings=D_MODEL = 32",
    "--gin_bindings=D_FF = 64", "--gin_bindings=Trainer.global_batch_size = 8",
    f"--gin_bindings=Trainer.train_steps = {STEPS}", "--gin_bindings=Trainer.steps_per_loop = 5",
    "--gin_bindings=Trainer.eval_every = 100", "--gin_bindings=Trainer.eval_batches = 2",
    "--gin_bindings=Trainer.checkpoint_every = 50", "--gin_bindings=Trainer.jit_compile = False",
    f"--gin_bindings=WarmupDecaySchedule.total_steps = {STEPS}",
    "--gin_bindings=configure_determinism.enabled = True",
]
EXIT_PREEMPTED = 143


def _command(model_dir, data_dir):
  return [sys.executable, "-m", "lag_tf.main"] + RUN + [
      f"--gin_bindings=DATA_DIR = '{data_dir}'", f"--model_dir={model_dir}"]


def _env():
  return dict(os.environ, PYTHONPATH=REPO)


def _run(model_dir, data_dir):
  return subprocess.run(_command(model_dir, data_dir), cwd=REPO, env=_env(),
                        capture_output=True, text=True, timeout=600)


def _run_and_signal(model_dir, data_dir, signum, after_step):
  """Starts the binary, sends `signum` once metrics.jsonl shows `after_step`; returns the
  exit code and stderr."""
  process = subprocess.Popen(_command(model_dir, data_dir), cwd=REPO, env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  metrics = os.path.join(model_dir, "metrics.jsonl")
  deadline = time.time() + 300
  while time.time() < deadline and process.poll() is None:
    steps = [r.step for r in read_metrics(metrics)]
    if steps and max(steps) >= after_step:
      process.send_signal(signum)
      break
    time.sleep(0.02)
  _, err = process.communicate(timeout=300)
  return process.returncode, err


def _losses(model_dir):
  return [(r.step, r.loss, r.eval_loss)
          for r in read_metrics(os.path.join(model_dir, "metrics.jsonl"))]


def _assert_same_metrics(actual, expected):
  assert [s for s, _, _ in actual] == [s for s, _, _ in expected]  # Every step, once.
  for (step, loss, eval_loss), (_, want_loss, want_eval) in zip(actual, expected):
    for got, want in ((loss, want_loss), (eval_loss, want_eval)):
      assert (got is None) == (want is None), step
      if want is not None:
        assert got == pytest.approx(want, abs=1e-6), step


def test_sigterm_then_kill_9_and_the_reruns_resume_exactly(tmp_path, data_dir):
  """One run stopped twice: SIGTERM (a checkpoint at the step it stopped at, exit 143, the
  lock released), then, in the rerun that resumes it, kill -9 (a stale lock, whatever was half
  written); the third run finishes, and the whole metrics file equals an uninterrupted run's,
  which trains beside them (two processes on two cores)."""
  reference_dir = str(tmp_path / "uninterrupted")
  reference = subprocess.Popen(_command(reference_dir, data_dir), cwd=REPO, env=_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  model_dir = str(tmp_path / "run")
  code, err = _run_and_signal(model_dir, data_dir, signal.SIGTERM, after_step=60)
  assert code == EXIT_PREEMPTED, err[-3000:]
  line = err.strip().splitlines()[-1]
  assert line.startswith("preempted: ") and "rerun the same command" in line, line
  stopped = max(s for s, _, _ in _losses(model_dir))
  assert 60 <= stopped < STEPS
  # The checkpoint is at the step it stopped at (not the last checkpoint_every multiple).
  with open(os.path.join(model_dir, "ckpt", "checkpoint")) as f:
    assert f"ckpt-{stopped}\"" in f.readline()
  assert not os.path.exists(os.path.join(model_dir, "run.lock"))
  code, err = _run_and_signal(model_dir, data_dir, signal.SIGKILL, after_step=stopped + 70)
  assert code == -signal.SIGKILL
  assert f"Restored {os.path.join(model_dir, 'ckpt', f'ckpt-{stopped}')}" in err
  killed = max(s for s, _, _ in _losses(model_dir))
  assert stopped + 70 <= killed < STEPS
  assert os.path.exists(os.path.join(model_dir, "run.lock"))  # Stale: its pid is gone.
  result = _run(model_dir, data_dir)
  assert result.returncode == 0, result.stderr[-3000:]
  assert not os.path.exists(os.path.join(model_dir, "run.lock"))
  _, err = reference.communicate(timeout=600)
  assert reference.returncode == 0, err[-3000:]
  _assert_same_metrics(_losses(model_dir), _losses(reference_dir))


def test_a_cut_last_metrics_line_is_skipped_and_repaired(tmp_path):
  path = tmp_path / "metrics.jsonl"
  path.write_text('{"step": 0, "eval_loss": 5.0}\n{"step": 5, "loss": 4.0}\n{"step": 10, "lo')
  assert [r.step for r in read_metrics(str(path))] == [0, 5]
  MetricsLogger(str(tmp_path)).truncate_after(5)
  assert path.read_text() == '{"step": 0, "eval_loss": 5.0}\n{"step": 5, "loss": 4.0}\n'


def test_a_half_written_checkpoint_is_ignored(tmp_path, data_dir):
  trainer = tiny_trainer(tmp_path, data_dir, train_steps=10, checkpoint_every=10)
  trainer.train()
  # A kill during the next save: data and index of ckpt-20 exist, the state file is not updated.
  ckpt = tmp_path / "ckpt"
  (ckpt / "ckpt-20.index").write_bytes(b"\x00cut")
  (ckpt / "ckpt-20.data-00000-of-00001").write_bytes(b"\x00cut")
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write(json.dumps({"step": 15, "loss": 1.0}) + "\n" + '{"step": 20, "lo')
  again = tiny_trainer(tmp_path, data_dir, train_steps=10, checkpoint_every=10)
  assert again.restore() == 10
  assert [r.step for r in read_metrics(str(tmp_path / "metrics.jsonl"))][-1] == 10


def test_a_decision_interrupted_before_its_rename_is_not_a_decision(tmp_path):
  directory = tmp_path / "decisions"
  directory.mkdir()
  (directory / ".stage-abc.tmp").write_text('{"winner": "st')  # Killed mid-write.
  assert model_dir_store.read_decision(str(tmp_path), 0) is None
  model_dir_store.commit_decision(str(tmp_path), DecisionRecord(stage=0, winner="stack"))
  assert model_dir_store.read_decision(str(tmp_path), 0).winner == "stack"
