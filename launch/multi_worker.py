r"""Runs lag_tf.main under MultiWorkerMirroredStrategy: N workers on this host, or prints the
per-host commands of a real cluster.

  python -m launch.multi_worker --num_workers=2 --model_dir=/tmp/mw \
    --gin_file=gin/experiments/quickstart.gin
  python -m launch.multi_worker --print_commands --hosts=10.0.0.2:2222,10.0.0.3:2222 \
    --model_dir=gs://my-bucket/runs/mw --gin_file=gin/experiments/quickstart.gin

Each local worker's output is streamed with a `[worker i]` prefix. If a worker fails the others
are stopped and the launcher exits 1. --dry_run prints the workers' commands instead. Exit codes: 0 all workers done; 2 bad flags (one `error:`
line); 1 a worker failed; 143 the workers were preempted and saved a checkpoint (rerun the
same command to resume).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Sequence

from absl import app, flags

from launch import tf_config as tf_config_lib
from launch.main_command import MULTI_WORKER_BINDINGS, host_commands, main_argv

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin files, passed to every worker.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, passed to every worker.")
flags.DEFINE_string("model_dir", None, "Experiment directory shared by all workers.")
flags.DEFINE_integer("num_workers", 2, "Worker processes to start on this host.")
flags.DEFINE_bool("print_commands", False,
                  "Print each host's command (with its TF_CONFIG) instead of running workers.")
flags.DEFINE_bool("dry_run", False, "Print each local worker's command (with its TF_CONFIG) "
                  "instead of starting the workers.")
flags.DEFINE_string("hosts", None, "With --print_commands: host:port,host:port,... (worker 0 "
                    "is the chief).")
flags.DEFINE_string("python", None, "Python interpreter of the workers (default: this one; "
                    "'python3' with --print_commands).")
flags.DEFINE_bool("allow_non_empty", False,
                  "Passed to every worker: use a non-empty --model_dir that holds no lag_tf run.")
flags.DEFINE_bool("allow_config_change", False,
                  "Passed to every worker: resume a model dir whose config.gin differs.")
flags.DEFINE_float("stop_grace_seconds", 10.0,
                   "After a worker fails, how long the others get to exit before being killed.")

EXIT_BAD_INPUT = 2
EXIT_WORKER_FAILED = 1
EXIT_PREEMPTED = 143  # lag_tf.main's code (not imported: the launcher does not load TensorFlow).


def _fail(code: int, message: str) -> None:
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(code)


def _stream(index: int, stream) -> None:
  for line in iter(stream.readline, ""):
    sys.stdout.write(f"[worker {index}] {line}")
    sys.stdout.flush()
  stream.close()


def _stop(processes, grace_seconds: float) -> None:
  for process in processes:
    if process.poll() is None:
      process.terminate()
  deadline = time.monotonic() + grace_seconds
  for process in processes:
    try:
      process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


def run_local_workers(argv: Sequence[str], num_workers: int, grace_seconds: float) -> int:
  """Starts `num_workers` copies of `argv`, each with its TF_CONFIG, and streams their output.

  Returns 0 when all succeed; 143 when they were preempted (a SIGTERM to this launcher is
  forwarded to every worker, which saves a checkpoint and exits 143); when one fails, stops the
  others (a lone worker would wait for
  its peers forever in the next collective), prints which one failed and returns 1. Workers run
  in the caller's working directory (relative gin files and model dirs mean the same thing)
  with this repo on PYTHONPATH.
  """
  workers = [f"localhost:{port}" for port in tf_config_lib.free_local_ports(num_workers)]
  processes, threads = [], []

  def forward_sigterm(signum, frame):  # Preemption of the host: every worker saves and exits 143.
    del frame
    for process in processes:
      if process.poll() is None:
        process.send_signal(signum)

  signal.signal(signal.SIGTERM, forward_sigterm)
  try:
    for index in range(num_workers):
      env = dict(os.environ, TF_CONFIG=tf_config_lib.tf_config(workers, index))
      env["PYTHONPATH"] = os.pathsep.join(
          p for p in (_REPO_ROOT, os.environ.get("PYTHONPATH")) if p)
      process = subprocess.Popen(list(argv), env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, bufsize=1)
      processes.append(process)
      thread = threading.Thread(target=_stream, args=(index, process.stdout), daemon=True)
      thread.start()
      threads.append(thread)
    while True:
      codes = [process.poll() for process in processes]
      # 143 = preempted with a checkpoint (lag_tf.main): the workers stop together, so wait.
      failed = [(i, code) for i, code in enumerate(codes)
                if code not in (None, 0, EXIT_PREEMPTED)]
      if failed:
        index, code = failed[0]
        _stop(processes, grace_seconds)
        for thread in threads:
          thread.join(timeout=5)
        print(f"error: worker {index} exited with code {code}; stopped the others",
              file=sys.stderr, flush=True)
        return EXIT_WORKER_FAILED
      if all(code in (0, EXIT_PREEMPTED) for code in codes):
        for thread in threads:
          thread.join(timeout=5)
        return EXIT_PREEMPTED if EXIT_PREEMPTED in codes else 0
      time.sleep(0.2)
  except KeyboardInterrupt:
    _stop(processes, grace_seconds)
    print("error: interrupted; stopped all workers", file=sys.stderr, flush=True)
    return EXIT_WORKER_FAILED


def main(argv) -> None:
  if len(argv) > 1:
    _fail(EXIT_BAD_INPUT, f"unexpected arguments {argv[1:]}; use --gin_file/--gin_bindings")
  if not FLAGS.model_dir:
    _fail(EXIT_BAD_INPUT, "--model_dir is required")
  if not FLAGS.gin_file:
    _fail(EXIT_BAD_INPUT, "give at least one --gin_file (e.g. gin/experiments/quickstart.gin)")
  if FLAGS.print_commands:
    if not FLAGS.hosts:
      _fail(EXIT_BAD_INPUT, "--print_commands needs --hosts=host:port,host:port,...")
    try:
      workers = tf_config_lib.parse_hosts(FLAGS.hosts)
    except ValueError as error:
      _fail(EXIT_BAD_INPUT, str(error))
    for line in host_commands(workers, FLAGS.python or "python3", FLAGS.gin_file,
                              FLAGS.gin_bindings, FLAGS.model_dir, _main_flags()):
      print(line)
    return
  if FLAGS.hosts:
    _fail(EXIT_BAD_INPUT, "--hosts only goes with --print_commands (local workers get free "
          "localhost ports)")
  if FLAGS.num_workers < 1:
    _fail(EXIT_BAD_INPUT, f"--num_workers={FLAGS.num_workers} must be at least 1")
  command = main_argv(FLAGS.python or sys.executable, FLAGS.gin_file, FLAGS.gin_bindings,
                      FLAGS.model_dir, MULTI_WORKER_BINDINGS, _main_flags())
  if FLAGS.dry_run:
    workers = [f"localhost:{2222 + i}" for i in range(FLAGS.num_workers)]
    for line in host_commands(workers, FLAGS.python or sys.executable, FLAGS.gin_file,
                              FLAGS.gin_bindings, FLAGS.model_dir, _main_flags()):
      print(line)
    print(f"(dry run: the {FLAGS.num_workers} local workers get free ports when started)")
    return
  sys.exit(run_local_workers(command, FLAGS.num_workers, FLAGS.stop_grace_seconds))


def _main_flags():
  return [f"--{name}" for name in ("allow_non_empty", "allow_config_change") if FLAGS[name].value]


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
