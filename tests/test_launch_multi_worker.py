"""launch/multi_worker.py end to end: 2 localhost worker processes under
MultiWorkerMirroredStrategy train the CI-sized run to the same loss curve as one process with
the same global batch (the chief writes metrics.jsonl), and commit the same LAG decision on a
CI-sized pool. About 90 s on 2 cores."""

import math
import os
import signal
import subprocess
import sys
import time

import pytest

from lag_fixtures import TINY_BINDINGS
from lag_tf import model_dir_store
from lag_tf.model_dir_store import read_metrics
from trainer_fixtures import TINY_RUN

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-4


def _run(module_args, model_dir, data_dir):
  command = [sys.executable, "-m"] + module_args + TINY_RUN + [
      f"--gin_bindings=DATA_DIR = '{data_dir}'", f"--model_dir={model_dir}"]
  return subprocess.run(command, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                        capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_dir):
  base = tmp_path_factory.mktemp("multi_worker")
  single = _run(["lag_tf.main"], base / "single", data_dir)
  assert single.returncode == 0, single.stderr[-3000:]
  two_workers = _run(["launch.multi_worker", "--num_workers=2"], base / "two_workers", data_dir)
  return base, single, two_workers


def _curve(model_dir):
  return {r.step: (r.loss, r.eval_loss)
          for r in read_metrics(os.path.join(model_dir, "metrics.jsonl"))}


def test_two_workers_train_the_same_curve_as_one_process(runs):
  base, _, two_workers = runs
  assert "[worker 0]" in two_workers.stdout and "[worker 1]" in two_workers.stdout
  single, multi = _curve(base / "single"), _curve(base / "two_workers")
  assert sorted(single) == sorted(multi) == [0, 10, 20], two_workers.stdout[-3000:]
  for step, (loss, eval_loss) in single.items():
    multi_loss, multi_eval_loss = multi[step]
    if loss is not None:
      assert math.isclose(loss, multi_loss, abs_tol=TOLERANCE), (step, loss, multi_loss)
    assert math.isclose(eval_loss, multi_eval_loss, abs_tol=TOLERANCE), (step, eval_loss,
                                                                         multi_eval_loss)
  # Only the chief writes the shared checkpoint dir.
  assert sorted(os.listdir(base / "two_workers" / "ckpt")) == sorted(
      os.listdir(base / "single" / "ckpt"))


def test_two_worker_run_exits_cleanly_and_writes_the_summary(runs):
  base, _, two_workers = runs
  assert two_workers.returncode == 0, two_workers.stderr[-2000:]
  assert (base / "two_workers" / "summary.md").exists()


LAG_RUN = (["--gin_file=gin/experiments/lag_quickstart.gin"]
           + [f"--gin_bindings={b}" for b in TINY_BINDINGS] + [
               "--gin_bindings=lag_experiment.base_steps = 10",
               "--gin_bindings=lag_experiment.continue_steps = 2",
               "--gin_bindings=ci_pool/growth.Pool.name = 'ci'",
               "--gin_bindings=ci_pool/growth.Pool.candidates = [@stack/growth.Candidate(), "
               "@zero_top/growth.Candidate(), @random_top/growth.Candidate()]",
               "--gin_bindings=lag_experiment.pool = @ci_pool/growth.Pool()"])


def test_two_workers_commit_the_same_lag_decision(tmp_path, data_dir):
  results = {}
  for name, module_args in (("single", ["lag_tf.main"]),
                            ("two_workers", ["launch.multi_worker", "--num_workers=2"])):
    command = [sys.executable, "-m"] + module_args + LAG_RUN + [
        f"--gin_bindings=DATA_DIR = '{data_dir}'", f"--model_dir={tmp_path / name}"]
    run = subprocess.run(command, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, (name, run.stderr[-3000:], run.stdout[-3000:])
    results[name] = model_dir_store.read_decision(str(tmp_path / name), 0)
  single, multi = results["single"], results["two_workers"]
  assert multi.winner == single.winner and multi.ranking == single.ranking
  for candidate, outcome in single.candidates.items():
    for step, loss in outcome.eval_losses.items():
      assert math.isclose(loss, multi.candidates[candidate].eval_losses[step],
                          abs_tol=TOLERANCE), (candidate, step)


def test_sigterm_to_the_launcher_checkpoints_all_workers_and_the_rerun_resumes(tmp_path,
                                                                               data_dir):
  steps = 60
  run = TINY_RUN + [f"--gin_bindings=Trainer.train_steps = {steps}",
                    f"--gin_bindings=WarmupDecaySchedule.total_steps = {steps}",
                    "--gin_bindings=Trainer.steps_per_loop = 5",
                    f"--gin_bindings=DATA_DIR = '{data_dir}'"]
  env = dict(os.environ, PYTHONPATH=REPO)
  single = subprocess.run([sys.executable, "-m", "lag_tf.main"] + run +
                          [f"--model_dir={tmp_path / 'single'}"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
  assert single.returncode == 0, single.stderr[-3000:]
  launcher = [sys.executable, "-m", "launch.multi_worker", "--num_workers=2"] + run + [
      f"--model_dir={tmp_path / 'multi'}"]
  process = subprocess.Popen(launcher, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
  metrics = os.path.join(tmp_path / "multi", "metrics.jsonl")
  deadline = time.time() + 300
  while time.time() < deadline and process.poll() is None:
    logged = [r.step for r in read_metrics(metrics)]
    if logged and max(logged) >= 15:
      process.send_signal(signal.SIGTERM)
      break
    time.sleep(0.05)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 143, stderr[-3000:]
  stopped_at = max(r.step for r in read_metrics(metrics))
  assert 15 <= stopped_at < steps
  again = subprocess.run(launcher, cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  resumed = read_metrics(metrics)
  assert [r.step for r in resumed] == sorted({r.step for r in resumed})  # Each step once.
  expected = {r.step: r for r in read_metrics(os.path.join(tmp_path / "single",
                                                          "metrics.jsonl"))}
  assert sorted(expected) == [r.step for r in resumed]
  for row in resumed:
    want = expected[row.step]
    for key, value, wanted in (("loss", row.loss, want.loss),
                               ("eval_loss", row.eval_loss, want.eval_loss)):
      if value is not None:
        assert math.isclose(value, wanted, abs_tol=TOLERANCE), (row.step, key)
