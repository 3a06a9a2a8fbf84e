"""Running the binary `lag_tf.main` in this process (TensorFlow is imported once, so a bad-input
row or a dry run costs about a second instead of a subprocess's ~10 s of imports)."""

import contextlib
import importlib.util
import logging
import os
import sys

from absl import flags
from absl import logging as absl_logging

from lag_tf import main as main_lib
from lag_tf.training import preemption


def run_main_in_process(argv, capsys, monkeypatch, info_logs=False):
  """(exit code, stdout, stderr) of `python -m lag_tf.main ARGV`.

  info_logs: stderr also holds the INFO lines the binary logs (absl's app.run logs INFO to
    stderr; in this process only warnings reach it), absl's and TensorFlow's alike.
  """
  monkeypatch.setattr(preemption, "install", lambda force=False: None)  # Keep pytest's SIGTERM.
  code = main_exit_code(argv, info_logs)
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def main_exit_code(argv, info_logs=False) -> int:
  """The exit code of `lag_tf.main`'s main on ARGV, run in this process (what it prints goes to
  this process's stdout and stderr). The caller keeps pytest's SIGTERM handler (see
  run_main_in_process)."""
  flags.FLAGS.unparse_flags()
  root = logging.getLogger()
  level, handler = root.level, logging.StreamHandler(sys.stderr)  # capsys' stderr, here.
  if info_logs:
    root.addHandler(handler)
    root.setLevel(logging.INFO)
  code = 0
  try:
    parsed = flags.FLAGS(main_lib.normalize_argv(["lag_tf.main"] + list(argv)))
    if info_logs and absl_logging.get_verbosity() < absl_logging.INFO:
      absl_logging.set_verbosity(absl_logging.INFO)  # app.run's default; parsing set WARNING.
    main_lib.main(parsed)
  except SystemExit as exit_:
    code = exit_.code
  finally:
    root.removeHandler(handler)
    root.setLevel(level)
    flags.FLAGS.unparse_flags()
  return code


def in_process_launcher(monkeypatch):
  """A `launch(argv, log)` for `python -m benchmarks.speedup` that runs each `lag_tf.main` in
  this process (TensorFlow imported once) instead of a child process, its output into `log`."""
  monkeypatch.setattr(preemption, "install", lambda force=False: None)

  def launch(argv, log):
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
      return main_exit_code(argv, info_logs=True)
  return launch


def snapshot(directory):
  """Every file under `directory` with its bytes (None if it does not exist)."""
  if not os.path.exists(directory):
    return None
  files = {}
  for root, _, names in os.walk(directory):
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        files[os.path.relpath(path, directory)] = f.read()
  return files


def load_benchmark(name: str):
  """The script benchmarks/<name>.py as a module (scripts run by path, not as modules of the
  benchmarks package), to call its functions in this process."""
  path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                      f"{name}.py")
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[name] = module  # Dataclasses look their module up there.
  spec.loader.exec_module(module)
  return module
