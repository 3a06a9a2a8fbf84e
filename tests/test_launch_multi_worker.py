"""launch/multi_worker.py end to end: 2 localhost worker processes under
MultiWorkerMirroredStrategy train a CI-sized LAG run's base to the same loss curve as one process
with the same global batch (the chief writes metrics.jsonl), resume after SIGTERM, and commit
the same LAG decision on a CI-sized pool."""

import math
import os
import signal
import subprocess
import sys
import time


from lag_fixtures import TINY_BINDINGS
from lag_tf import model_dir_store
from lag_tf.model_dir_store import read_metrics
from main_fixtures import run_main_in_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-4
BASE_STEPS = 60  # SIGTERM at step 10 or later: a wide margin to stop inside the base.


def _curve(model_dir):
  return {r.step: (r.loss, r.eval_loss)
          for r in read_metrics(os.path.join(model_dir, "metrics.jsonl"))}


LAG_RUN = (["--gin_file=gin/experiments/lag_quickstart.gin"]
           + [f"--gin_bindings={b}" for b in TINY_BINDINGS] + [
               f"--gin_bindings=lag_experiment.base_steps = {BASE_STEPS}",
               f"--gin_bindings=WarmupDecaySchedule.total_steps = {BASE_STEPS}",
               "--gin_bindings=Trainer.steps_per_loop = 5",
               "--gin_bindings=lag_experiment.continue_steps = 2",
               "--gin_bindings=ci_pool/growth.Pool.name = 'ci'",
               "--gin_bindings=ci_pool/growth.Pool.candidates = [@stack/growth.Candidate(), "
               "@zero_top/growth.Candidate(), @random_top/growth.Candidate()]",
               "--gin_bindings=lag_experiment.pool = @ci_pool/growth.Pool()"])


def test_two_workers_grow_like_one_process_and_resume_after_sigterm(tmp_path, data_dir, capsys,
                                                                     monkeypatch):
  """One launch of a LAG run, SIGTERMed while it trains the base: every worker checkpoints at
  the same step (exit 143); the rerun resumes, and the base's whole curve equals one process's
  with the same global batch (two workers train like one, and resume exactly), the decision is
  the same (winner, ranking, every candidate's eval losses), and only the chief writes the model
  dir. One test for all of it: a launch is three processes (~20 s each on 2 cores)."""
  data = [f"--gin_bindings=DATA_DIR = '{data_dir}'"]
  # The one-process reference runs in this process (the process boundary is not under test).
  code, _, err = run_main_in_process(LAG_RUN + data + [f"--model_dir={tmp_path / 'single'}"],
                                     capsys, monkeypatch)
  assert code == 0, err[-3000:]
  env = dict(os.environ, PYTHONPATH=REPO)
  launcher = [sys.executable, "-m", "launch.multi_worker", "--num_workers=2"] + LAG_RUN + data + [
      f"--model_dir={tmp_path / 'multi'}"]
  process = subprocess.Popen(launcher, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
  metrics = os.path.join(tmp_path / "multi", "metrics.jsonl")  # The base's.
  deadline = time.time() + 300
  while time.time() < deadline and process.poll() is None:
    logged = [r.step for r in read_metrics(metrics)]
    if logged and max(logged) >= 10:
      process.send_signal(signal.SIGTERM)
      break
    time.sleep(0.05)
  _, stderr = process.communicate(timeout=300)
  assert process.returncode == 143, stderr[-3000:]
  stopped_at = max(r.step for r in read_metrics(metrics))
  assert 10 <= stopped_at < BASE_STEPS
  assert model_dir_store.read_decision(str(tmp_path / "multi"), 0) is None
  again = subprocess.run(launcher, cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "[worker 0]" in again.stdout and "[worker 1]" in again.stdout
  assert (tmp_path / "multi" / "summary.md").exists()
  resumed = read_metrics(metrics)
  assert [r.step for r in resumed] == sorted({r.step for r in resumed})  # Each step once.
  single, multi = _curve(tmp_path / "single"), _curve(tmp_path / "multi")
  assert sorted(single) == [r.step for r in resumed] and 0 in single and BASE_STEPS in single
  for step, (loss, eval_loss) in single.items():
    multi_loss, multi_eval_loss = multi[step]
    for key, value, wanted in (("loss", multi_loss, loss), ("eval_loss", multi_eval_loss,
                                                            eval_loss)):
      assert (value is None) == (wanted is None), (step, key)
      if value is not None:
        assert math.isclose(value, wanted, abs_tol=TOLERANCE), (step, key, value, wanted)
  decisions = {name: model_dir_store.read_decision(str(tmp_path / name), 0)
               for name in ("single", "multi")}
  assert decisions["multi"].winner == decisions["single"].winner
  assert decisions["multi"].ranking == decisions["single"].ranking
  for candidate, outcome in decisions["single"].candidates.items():
    for step, loss in outcome.eval_losses.items():
      assert math.isclose(loss, decisions["multi"].candidates[candidate].eval_losses[step],
                          abs_tol=TOLERANCE), (candidate, step)
  # Only the chief writes the shared checkpoint dirs: no worker's copies in them.
  for ckpt in ("ckpt", os.path.join("candidates", decisions["single"].winner, "ckpt")):
    assert sorted(os.listdir(tmp_path / "multi" / ckpt)) == sorted(
        os.listdir(tmp_path / "single" / ckpt))
