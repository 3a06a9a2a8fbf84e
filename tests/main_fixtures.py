"""Running the binary `lag_tf.main` in this process (TensorFlow is imported once, so a bad-input
row or a dry run costs about a second instead of a subprocess's ~10 s of imports)."""

import os

from absl import flags

from lag_tf import main as main_lib
from lag_tf.training import preemption


def run_main_in_process(argv, capsys, monkeypatch):
  """(exit code, stdout, stderr) of `python -m lag_tf.main ARGV`."""
  monkeypatch.setattr(preemption, "install", lambda force=False: None)  # Keep pytest's SIGTERM.
  flags.FLAGS.unparse_flags()
  code = 0
  try:
    main_lib.main(flags.FLAGS(main_lib.normalize_argv(["lag_tf.main"] + list(argv))))
  except SystemExit as exit_:
    code = exit_.code
  finally:
    flags.FLAGS.unparse_flags()
  captured = capsys.readouterr()
  return code, captured.out, captured.err


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
