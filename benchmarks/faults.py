"""Fault injection: kill, starve and damage CI-sized runs at random moments, resume them, and
check that nothing was lost or changed.

  python benchmarks/faults.py                      # up to 23 faults of 7 kinds (the defaults)
  python benchmarks/faults.py --runs=5 --kills_per_run=4 --seed=1
  python benchmarks/faults.py --runs=1 --kills_per_run=1 --disk_full_per_kind=1 \
    --corrupt_runs=1 --worker_kills=1              # one fault of each kind
  python benchmarks/faults.py --experiment=quickstart --runs=0 --corrupt_runs=1 \
    --disk_full_per_kind=1 --worker_kills=1        # the cheapest check of the new kinds

The LAG run is gin/experiments/lag_quickstart.gin (10 depth candidates) with the CI-sized
bindings of tests/lag_fixtures.py, a checkpoint every 2 steps and deterministic mode on. First
one uninterrupted reference run, then faulty runs, each resumed by rerunning the same command:

  SIGTERM / SIGKILL   a run is killed once a random number of metric records (more than the dir
                      already holds) exist, plus up to 1 s (base training, probing, checkpoint
                      writes, the decision commit, continuation); rerun, killed again, ...
  disk full           the model dir is a small tmpfs; right before a checkpoint save, a metrics
                      line or the decision commit, a filler takes every free byte
                      (benchmarks/disk_full_main.py), so that write gets the real ENOSPC. The run
                      must exit 1 with one `error: the disk is full` line; the filler is deleted
                      ("free space") and the same command rerun.
  corrupt checkpoint  a run is killed (SIGKILL) at a random moment, then its newest checkpoint
                      that has an older one beside it is truncated or gets a flipped byte; the
                      rerun must say it falls back (`is damaged`) and finish.
  worker lost         a 2-worker run under launch/multi_worker.py (its own uninterrupted
                      reference) loses one worker to SIGKILL; the launcher must stop the other
                      and exit non-zero, and the rerun resume.

Then, against the reference:

  injected    faults that hit a live run (a signal delivered, a write that got ENOSPC, a
              checkpoint damaged, a worker killed)
  resumed     reruns after a fault that resumed (exit 0, or stopped by the next fault);
              a rerun that cannot resume exits 1 or 2
  lost        (metrics file, step) records missing or duplicated, over all faulty runs
  mismatched  faulty runs whose decision (winner, ranking) or any logged loss differs (1e-6),
              or that did not fail the way their fault must

The last line is `faults: injected=<n> resumed=<n> lost=<n> mismatched=<n>`.
"""

from __future__ import annotations

import argparse
import glob
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
from lag_tf import model_dir_store as store  # noqa: E402
from trainer_fixtures import TINY_RUN  # noqa: E402

SMALL_CORPUS = "python_stdlib_corpus/small"
TOLERANCE = 1e-6
CONTINUE_STEPS = 4
DISK_FULL_KINDS = ("checkpoint", "metrics", "decision")
TMPFS_SIZE = "256m"
WORKER_STEPS = 40


EXPERIMENT = {"name": "lag"}  # --experiment; module state, set once in main().


def _run_flags(data_dir: str) -> list:
  """The faulted run's gin flags: the CI-sized LAG run, or (--experiment=quickstart) the
  CI-sized quickstart training run, which is 10x cheaper but commits no decision."""
  if EXPERIMENT["name"] == "quickstart":
    bindings = [f"Trainer.train_steps = {WORKER_STEPS}",
                f"WarmupDecaySchedule.total_steps = {WORKER_STEPS}"]
    flags = list(TINY_RUN)
  else:
    bindings = TINY_BINDINGS + [
        f"lag_experiment.base_steps = {BASE_STEPS}",
        f"lag_experiment.continue_steps = {CONTINUE_STEPS}",
        # Several checkpoints per model, so a damaged newest one has a previous one to fall to.
        "Trainer.checkpoint_every = 2"]
    flags = ["--gin_file=gin/experiments/lag_quickstart.gin"]
  bindings += ["configure_determinism.enabled = True", f"DATA_DIR = '{data_dir}'"]
  return flags + [f"--gin_bindings={b}" for b in bindings]


def command(model_dir: str, data_dir: str, entry: tuple = ("-m", "lag_tf.main")) -> list:
  return [sys.executable, *entry] + _run_flags(data_dir) + [f"--model_dir={model_dir}"]


def worker_command(model_dir: str, data_dir: str) -> list:
  """The CI-sized quickstart run, 2 localhost workers under launch/multi_worker.py."""
  saved, EXPERIMENT["name"] = EXPERIMENT["name"], "quickstart"
  try:
    flags = _run_flags(data_dir)
  finally:
    EXPERIMENT["name"] = saved
  return ([sys.executable, "-m", "launch.multi_worker", "--num_workers=2"] + flags +
          [f"--model_dir={model_dir}"])


def metrics_files(model_dir: str) -> list:
  run_dirs = [model_dir] + [store.candidate_dir(model_dir, name)
                            for name in store.candidate_names(model_dir)]
  return sorted(path for path in map(store.metrics_path, run_dirs) if os.path.exists(path))


def record_count(model_dir: str) -> int:
  return sum(len(store.read_metrics(path)) for path in metrics_files(model_dir))


def _env(**extra) -> dict:
  return dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", **extra)


def run_to_end(argv: list, log, **env) -> tuple:
  """Runs `argv` to its end; returns (exit code, its stderr), both also in the log."""
  result = subprocess.run(argv, cwd=REPO, stdout=log, stderr=subprocess.PIPE, text=True,
                          env=_env(**env))
  log.write(result.stderr)
  log.flush()
  return result.returncode, result.stderr


def run_and_kill(argv: list, model_dir: str, at_records: int, delay: float, signum: int,
                 log, victim=None) -> tuple:
  """Starts `argv`, sends `signum` after `at_records` metric records and `delay` seconds (to
  the process, or to `victim(process)`'s pid); returns (whether it hit a live run, exit code)."""
  process = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=log, env=_env())
  while process.poll() is None and record_count(model_dir) < at_records:
    time.sleep(0.02)
  time.sleep(delay)
  hit = process.poll() is None
  if hit:
    pid = victim(process) if victim else process.pid
    hit = pid is not None
    if hit:
      os.kill(pid, signum)
  return hit, process.wait()


def snapshot(model_dir: str) -> dict:
  """What must match the reference: the decision and every metrics file's losses by step."""
  record = store.read_decision(model_dir, 0)
  decision = None if record is None else {"winner": record.winner, "ranking": record.ranking}
  files = {}
  for path in metrics_files(model_dir):
    files[os.path.relpath(path, model_dir)] = [
        (r.step, r.loss, r.eval_loss) for r in store.read_metrics(path)]
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


class Tally:
  """Counts per fault kind, and the totals of the last line."""

  def __init__(self):
    self.injected, self.resumed, self.lost, self.mismatched = {}, 0, 0, 0

  def hit(self, kind: str) -> None:
    self.injected[kind] = self.injected.get(kind, 0) + 1

  def finish(self, name: str, reference: dict, model_dir: str, code: int, ok: bool = True) -> None:
    """A faulty run ended with the rerun's `code`; `ok`: it failed the way its fault must."""
    run_lost, differs = compare(reference, snapshot(model_dir))
    self.lost += run_lost
    self.mismatched += bool(differs or code != 0 or not ok)
    print(f"{name}: final exit {code}, lost {run_lost}, "
          f"{'MISMATCH' if differs or code else 'same decision and metrics'}"
          f"{'' if ok else ', FAILED WRONGLY'}", flush=True)


def signal_faults(args, rng, work_dir, data_dir, reference, total_records, tally) -> None:
  for run in range(args.runs):
    model_dir = os.path.join(work_dir, f"run-{run}")
    argv = command(model_dir, data_dir)
    with open(os.path.join(work_dir, f"run-{run}.log"), "w") as log:
      after_fault = False
      for _ in range(args.kills_per_run):
        # Past what the dir already holds: a rerun must make progress before it is hit again.
        at_records = rng.randrange(min(record_count(model_dir), total_records - 1), total_records)
        delay = rng.uniform(0.0, 1.0)
        signum = rng.choice([signal.SIGTERM, signal.SIGKILL])
        name = signal.Signals(signum).name
        log.write(f"\n=== fault: {name} after {at_records} records + {delay:.2f}s ===\n")
        log.flush()
        hit, code = run_and_kill(argv, model_dir, at_records, delay, signum, log)
        if after_fault and code in (0, 143, -signal.SIGTERM, -signal.SIGKILL):
          tally.resumed += 1
        if hit:
          tally.hit(name)
        after_fault = hit
        print(f"run {run}: {name} after {at_records} records + {delay:.2f}s -> "
              f"{'hit' if hit else 'finished first'}, exit {code}", flush=True)
      code, _ = run_to_end(argv, log)
      tally.resumed += after_fault and code == 0
    tally.finish(f"run {run}", reference, model_dir, code)


def _mount_tmpfs(path: str) -> str:
  """Mounts a small tmpfs at `path`; returns '' or why it cannot."""
  os.makedirs(path, exist_ok=True)
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", path],
                          capture_output=True, text=True)
  return "" if result.returncode == 0 else (result.stderr.strip() or "mount failed")


def disk_full_faults(args, rng, work_dir, data_dir, reference, tally) -> None:
  for kind in DISK_FULL_KINDS:
    if kind == "decision" and EXPERIMENT["name"] != "lag":
      continue  # A training run commits no decision.
    for index in range(args.disk_full_per_kind):
      name = f"disk-full-{kind}-{index}"
      mount = os.path.join(work_dir, name)
      why = _mount_tmpfs(mount)
      if why:
        print(f"{name}: skipped, cannot mount a tmpfs ({why})", flush=True)
        return
      try:
        model_dir = os.path.join(mount, "run")
        # Within the writes a run makes: 4 checkpoints and one new metrics file (whose first
        # line needs a page) in the quickstart run; dozens of each in the LAG run.
        quick = EXPERIMENT["name"] == "quickstart"
        nth = {"decision": 1, "metrics": 1 if quick else rng.randint(1, 12),
               "checkpoint": rng.randint(1, 4 if quick else 12)}[kind]
        with open(os.path.join(work_dir, f"{name}.log"), "w") as log:
          code, err = run_to_end(command(model_dir, data_dir, ("benchmarks/disk_full_main.py",)),
                                 log, LAG_TF_DISK_FULL=f"{kind}:{nth}:{mount}")
          filled = os.path.exists(os.path.join(mount, "filler"))
          last = (err.strip().splitlines() or [""])[-1]
          one_line = code == 1 and last.startswith("error: the disk is full") and (
              "Traceback" not in err)
          if filled:
            tally.hit(f"disk full ({kind})")
            os.remove(os.path.join(mount, "filler"))  # The user frees space.
          print(f"{name}: disk filled before {kind} write {nth}: "
                f"{f'exit {code}: {last[:160]}' if filled else f'not reached (exit {code})'}",
                flush=True)
          code, _ = run_to_end(command(model_dir, data_dir), log)
          tally.resumed += filled and code == 0
        tally.finish(name, reference, model_dir, code, ok=one_line or not filled)
      finally:
        subprocess.run(["umount", mount], check=False)


def _checkpoint_states(model_dir: str) -> list:
  """[(newest checkpoint, whether an older one is listed)] of every ckpt/ under model_dir."""
  found = []
  for state in glob.glob(os.path.join(model_dir, "**", "ckpt", "checkpoint"), recursive=True):
    with open(state) as f:
      paths = [line.split('"')[1] for line in f if line.startswith("all_model_checkpoint_paths")]
    if paths:
      found.append((os.path.join(os.path.dirname(state), paths[-1]), len(paths) > 1))
  return found


def _damage(prefix: str, how: str) -> None:
  data = glob.glob(prefix + ".data-*")[0]
  with open(data, "r+b") as f:
    size = os.path.getsize(data)
    if how == "truncated":
      f.truncate(size // 2)
    else:
      f.seek(size // 2)
      byte = f.read(1)
      f.seek(size // 2)
      f.write(bytes([byte[0] ^ 0xFF]))


def corrupt_checkpoint_faults(args, rng, work_dir, data_dir, reference, total_records,
                              tally) -> None:
  for index in range(args.corrupt_runs):
    name = f"corrupt-{index}"
    model_dir = os.path.join(work_dir, name)
    argv = command(model_dir, data_dir)
    with open(os.path.join(work_dir, f"{name}.log"), "w") as log:
      at_records = rng.randrange(total_records // 5, total_records * 4 // 5)
      run_and_kill(argv, model_dir, at_records, rng.uniform(0.0, 1.0), signal.SIGKILL, log)
      victims = [(os.path.getmtime(path + ".index"), path)
                 for path, has_older in _checkpoint_states(model_dir) if has_older]
      how = rng.choice(["truncated", "flipped"])
      victim = max(victims)[1] if victims else None
      if victim:
        _damage(victim, how)
        tally.hit("corrupt checkpoint")
      print(f"{name}: killed after {at_records} records; newest checkpoint "
            f"{os.path.relpath(victim, model_dir) if victim else '(none with an older one)'} "
            f"{how if victim else 'left alone'}", flush=True)
      code, err = run_to_end(argv, log)
      fell_back = "is damaged" in err and "falling back to" in err
      tally.resumed += bool(victim) and code == 0 and fell_back
    tally.finish(name, reference, model_dir, code, ok=fell_back or not victim)


def _a_worker(launcher: subprocess.Popen, rng) -> int:
  """The pid of one of the launcher's worker processes (drawn at random), or None."""
  try:
    with open(f"/proc/{launcher.pid}/task/{launcher.pid}/children") as f:
      children = [int(pid) for pid in f.read().split()]
  except OSError:
    return None
  return rng.choice(children) if children else None


def worker_faults(args, rng, work_dir, data_dir, tally) -> None:
  if not args.worker_kills:
    return
  reference_dir = os.path.join(work_dir, "workers-reference")
  with open(os.path.join(work_dir, "workers-reference.log"), "w") as log:
    code, _ = run_to_end(worker_command(reference_dir, data_dir), log)
  if code != 0:
    print(f"workers: the reference 2-worker run failed (exit {code}); worker faults skipped",
          flush=True)
    tally.mismatched += 1
    return
  reference = snapshot(reference_dir)
  total = sum(len(v) for v in reference["metrics"].values())
  for index in range(args.worker_kills):
    name = f"workers-{index}"
    model_dir = os.path.join(work_dir, name)
    argv = worker_command(model_dir, data_dir)
    with open(os.path.join(work_dir, f"{name}.log"), "w") as log:
      at_records = rng.randrange(1, total)
      hit, launcher_code = run_and_kill(argv, model_dir, at_records, rng.uniform(0.0, 1.0),
                                        signal.SIGKILL, log, lambda p: _a_worker(p, rng))
      if hit:
        tally.hit("worker lost")
      print(f"{name}: a worker SIGKILLed after {at_records} records -> launcher exit "
            f"{launcher_code}", flush=True)
      code, _ = run_to_end(argv, log)
      tally.resumed += hit and launcher_code != 0 and code == 0
    tally.finish(name, reference, model_dir, code, ok=launcher_code != 0 or not hit)


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", type=int, default=4, help="runs killed by signals")
  parser.add_argument("--kills_per_run", type=int, default=3, help="signals per run")
  parser.add_argument("--disk_full_per_kind", type=int, default=2,
                      help="disk-full runs per write (checkpoint, metrics line, decision)")
  parser.add_argument("--corrupt_runs", type=int, default=3,
                      help="runs whose newest checkpoint is damaged")
  parser.add_argument("--worker_kills", type=int, default=2,
                      help="2-worker runs that lose a worker (0: no multi-worker runs)")
  parser.add_argument("--experiment", choices=("lag", "quickstart"), default="lag",
                      help="the faulted run: the CI-sized LAG run, or the 10x cheaper CI-sized "
                      "quickstart training run (no decision, so no disk-full-at-decision fault)")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--work_dir", default=None, help="default: a new temporary dir (a "
                      "finished reference run already in it is reused)")
  parser.add_argument("--data_dir", default=None,
                      help="tfds data dir (default: <work_dir>/tfds, prepared here)")
  args = parser.parse_args()
  EXPERIMENT["name"] = args.experiment
  work_dir = args.work_dir or tempfile.mkdtemp(prefix="lag_tf_faults_")
  os.makedirs(work_dir, exist_ok=True)
  data_dir = args.data_dir or os.path.join(work_dir, "tfds")
  if not args.data_dir:
    from lag_tf import data  # Imports TensorFlow: only when the corpus must be prepared.
    data.load_or_prepare(SMALL_CORPUS, data_dir)
  rng = random.Random(args.seed)
  print(f"work dir {work_dir}", flush=True)

  started, code = time.time(), 0
  if not os.path.exists(os.path.join(work_dir, "reference", "summary.md")):  # Else reused.
    with open(os.path.join(work_dir, "reference.log"), "w") as log:
      code, _ = run_to_end(command(os.path.join(work_dir, "reference"), data_dir), log)
  if code != 0:
    print(f"error: the reference run failed (exit {code}); see {work_dir}/reference.log",
          file=sys.stderr)
    return 1
  reference = snapshot(os.path.join(work_dir, "reference"))
  total_records = sum(len(v) for v in reference["metrics"].values())
  print(f"reference: winner {(reference['decision'] or {}).get('winner')}, {total_records} "
        "metric records, "
        f"{time.time() - started:.0f}s", flush=True)

  tally = Tally()
  signal_faults(args, rng, work_dir, data_dir, reference, total_records, tally)
  disk_full_faults(args, rng, work_dir, data_dir, reference, tally)
  worker_faults(args, rng, work_dir, data_dir, tally)
  corrupt_checkpoint_faults(args, rng, work_dir, data_dir, reference, total_records, tally)
  injected = sum(tally.injected.values())
  print("by kind: " + ", ".join(f"{kind} {n}" for kind, n in sorted(tally.injected.items())))
  print(f"faults: injected={injected} resumed={tally.resumed} lost={tally.lost} "
        f"mismatched={tally.mismatched}")
  return 0 if (tally.lost, tally.mismatched) == (0, 0) and tally.resumed == injected else 1


if __name__ == "__main__":
  sys.exit(main())
