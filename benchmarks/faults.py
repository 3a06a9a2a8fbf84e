"""Fault injection: kill a CI-sized LAG run at random moments, resume it, and check that nothing
was lost or changed.

  python benchmarks/faults.py                      # 4 runs x 3 kills = 12 injected faults
  python benchmarks/faults.py --runs=5 --kills_per_run=4 --seed=1

The run is gin/experiments/lag_quickstart.gin (10 depth candidates) with the CI-sized bindings of
tests/lag_fixtures.py and deterministic mode on. First one uninterrupted reference run; then
each faulty run is started, killed (SIGTERM or SIGKILL, drawn at random) once a random number
of metric records (more than the dir already holds) exist across the base and candidate
metrics.jsonl files, plus a random delay of up to 1 s (so
kills land in base training, probing, checkpoint writes, the decision commit, continuation),
rerun with the same command, killed again, ..., and finally run to completion. Then, against
the reference:

  injected    signals delivered to a live run
  resumed     reruns after a fault that resumed (exit 0, or stopped by the next fault);
              a rerun that cannot resume exits 1 or 2
  lost        (metrics file, step) records missing or duplicated, over all faulty runs
  mismatched  faulty runs whose decision (winner, ranking) or any logged loss differs (1e-6)

The last line is `faults: injected=<n> resumed=<n> lost=<n> mismatched=<n>`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

from lag_fixtures import BASE_STEPS, TINY_BINDINGS  # noqa: E402

SMALL_CORPUS = "python_stdlib_corpus/small"
TOLERANCE = 1e-6
CONTINUE_STEPS = 4


def command(model_dir: str, data_dir: str) -> list:
  bindings = TINY_BINDINGS + [
      f"DATA_DIR = '{data_dir}'", f"lag_experiment.base_steps = {BASE_STEPS}",
      f"lag_experiment.continue_steps = {CONTINUE_STEPS}",
      "configure_determinism.enabled = True"]
  return ([sys.executable, "-m", "lag_tf.main",
           "--gin_file=gin/experiments/lag_quickstart.gin", f"--model_dir={model_dir}"] +
          [f"--gin_bindings={b}" for b in bindings])


def metrics_files(model_dir: str) -> list:
  return sorted(glob.glob(os.path.join(model_dir, "metrics.jsonl")) +
                glob.glob(os.path.join(model_dir, "candidates", "*", "metrics.jsonl")))


def read_records(path: str) -> list:
  """Parsed lines of a metrics.jsonl; a cut last line (the run is being killed) is skipped."""
  records = []
  try:
    with open(path) as f:
      for line in f:
        try:
          records.append(json.loads(line))
        except ValueError:
          pass
  except FileNotFoundError:
    pass
  return records


def record_count(model_dir: str) -> int:
  return sum(len(read_records(path)) for path in metrics_files(model_dir))


def run_to_end(model_dir: str, data_dir: str, log) -> int:
  return subprocess.call(command(model_dir, data_dir), cwd=REPO, stdout=log, stderr=log,
                         env=dict(os.environ, PYTHONPATH=REPO))


def run_and_kill(model_dir: str, data_dir: str, at_records: int, delay: float, signum: int,
                 log) -> tuple:
  """Starts the run, sends `signum` after `at_records` metric records and `delay` seconds;
  returns (whether the signal hit a live run, exit code)."""
  process = subprocess.Popen(command(model_dir, data_dir), cwd=REPO, stdout=log, stderr=log,
                             env=dict(os.environ, PYTHONPATH=REPO))
  while process.poll() is None and record_count(model_dir) < at_records:
    time.sleep(0.02)
  time.sleep(delay)
  hit = process.poll() is None
  if hit:
    process.send_signal(signum)
  return hit, process.wait()


def snapshot(model_dir: str) -> dict:
  """What must match the reference: the decision and every metrics file's losses by step."""
  decision_path = os.path.join(model_dir, "decisions", "stage-0.json")
  decision = None
  if os.path.exists(decision_path):
    with open(decision_path) as f:
      record = json.load(f)
    decision = {"winner": record["winner"], "ranking": record["ranking"]}
  files = {}
  for path in metrics_files(model_dir):
    files[os.path.relpath(path, model_dir)] = [
        (r["step"], r.get("loss"), r.get("eval_loss")) for r in read_records(path)]
  return {"decision": decision, "metrics": files}


def compare(reference: dict, actual: dict) -> tuple:
  """(lost or duplicated records, whether anything differs)."""
  lost, differs = 0, actual["decision"] != reference["decision"]
  for name, expected in reference["metrics"].items():
    got = actual["metrics"].get(name, [])
    want_steps = [s for s, _, _ in expected]
    got_steps = [s for s, _, _ in got]
    lost += sum(max(0, want_steps.count(s) - got_steps.count(s)) for s in set(want_steps))
    lost += sum(max(0, got_steps.count(s) - want_steps.count(s)) for s in set(got_steps))
    if got_steps != want_steps:
      differs = True
      continue
    for (_, loss, eval_loss), (_, want_loss, want_eval) in zip(got, expected):
      for value, want in ((loss, want_loss), (eval_loss, want_eval)):
        if (value is None) != (want is None) or (
            want is not None and abs(float(value) - float(want)) > TOLERANCE):
          differs = True
  differs = differs or set(actual["metrics"]) != set(reference["metrics"])
  return lost, differs


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", type=int, default=4, help="faulty runs")
  parser.add_argument("--kills_per_run", type=int, default=3, help="faults per run")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--work_dir", default=None, help="default: a new temporary dir")
  parser.add_argument("--data_dir", default=None,
                      help="tfds data dir (default: <work_dir>/tfds, prepared here)")
  args = parser.parse_args()
  work_dir = args.work_dir or tempfile.mkdtemp(prefix="lag_tf_faults_")
  os.makedirs(work_dir, exist_ok=True)
  data_dir = args.data_dir or os.path.join(work_dir, "tfds")
  if not args.data_dir:
    from lag_tf import data  # Imports TensorFlow: only when the corpus must be prepared.
    data.load_or_prepare(SMALL_CORPUS, data_dir)
  rng = random.Random(args.seed)
  print(f"work dir {work_dir}", flush=True)

  with open(os.path.join(work_dir, "reference.log"), "w") as log:
    started = time.time()
    code = run_to_end(os.path.join(work_dir, "reference"), data_dir, log)
  if code != 0:
    print(f"error: the reference run failed (exit {code}); see {work_dir}/reference.log",
          file=sys.stderr)
    return 1
  reference = snapshot(os.path.join(work_dir, "reference"))
  total_records = sum(len(v) for v in reference["metrics"].values())
  print(f"reference: winner {reference['decision']['winner']}, {total_records} metric records, "
        f"{time.time() - started:.0f}s", flush=True)

  injected = resumed = lost = mismatched = 0
  for run in range(args.runs):
    model_dir = os.path.join(work_dir, f"run-{run}")
    with open(os.path.join(work_dir, f"run-{run}.log"), "w") as log:
      after_fault = False
      for _ in range(args.kills_per_run):
        # Past what the dir already holds: a rerun must make progress before it is hit again.
        at_records = rng.randrange(min(record_count(model_dir), total_records - 1), total_records)
        delay = rng.uniform(0.0, 1.0)
        signum = rng.choice([signal.SIGTERM, signal.SIGKILL])
        log.write(f"\n=== fault: {signal.Signals(signum).name} after {at_records} records "
                  f"+ {delay:.2f}s ===\n")
        log.flush()
        hit, code = run_and_kill(model_dir, data_dir, at_records, delay, signum, log)
        if after_fault and code in (0, 143, -signal.SIGTERM, -signal.SIGKILL):
          resumed += 1
        injected += hit
        after_fault = hit
        print(f"run {run}: {signal.Signals(signum).name} after {at_records} records + "
              f"{delay:.2f}s -> {'hit' if hit else 'finished first'}, exit {code}", flush=True)
      code = run_to_end(model_dir, data_dir, log)
      if after_fault and code == 0:
        resumed += 1
    run_lost, differs = compare(reference, snapshot(model_dir))
    lost += run_lost
    mismatched += differs or code != 0
    print(f"run {run}: final exit {code}, lost {run_lost}, "
          f"{'MISMATCH' if differs or code else 'same decision and metrics'}", flush=True)
  print(f"faults: injected={injected} resumed={resumed} lost={lost} mismatched={mismatched}")
  return 0 if (lost, mismatched) == (0, 0) and resumed == injected else 1


if __name__ == "__main__":
  sys.exit(main())
