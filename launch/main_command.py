"""The argv of one `python -m lag_tf.main` run, shared by every launcher.

The launchers add their strategy bindings after the user's, so the strategy a launcher exists
for (TPU, multi-worker) wins over whatever hardware file the experiment included.
"""

from __future__ import annotations

import shlex
from typing import List, Sequence

from launch.tf_config import tf_config

# What every worker of a multi-worker job adds to the user's bindings.
MULTI_WORKER_BINDINGS = ("make_strategy.name = 'multi_worker'",)


def main_argv(python: str, gin_files: Sequence[str], gin_bindings: Sequence[str],
              model_dir: str, launcher_bindings: Sequence[str] = (),
              main_flags: Sequence[str] = ()) -> List[str]:
  """`python -m lag_tf.main --gin_file=... --gin_bindings=... --model_dir=...` as an argv list.

  main_flags: lag_tf.main's own switches to pass on (e.g. `--allow_non_empty`).

  Each value stays one argument (`--flag=value`); quoting for a shell is the caller's job
  (shlex.join), so a binding holding quotes, `;` or `$(...)` reaches gin unchanged.
  """
  argv = [python, "-m", "lag_tf.main"]
  argv += [f"--gin_file={path}" for path in gin_files]
  argv += [f"--gin_bindings={binding}" for binding in list(gin_bindings) + list(launcher_bindings)]
  argv.append(f"--model_dir={model_dir}")
  return argv + list(main_flags)


def host_commands(workers: Sequence[str], python: str, gin_files, gin_bindings,
                  model_dir: str, main_flags: Sequence[str] = ()) -> List[str]:
  """One shell line per worker: `env TF_CONFIG=... python -m lag_tf.main ...`."""
  argv = main_argv(python, gin_files, gin_bindings, model_dir, MULTI_WORKER_BINDINGS,
                   main_flags)
  return [shlex.join(["env", f"TF_CONFIG={tf_config(workers, index)}"] + argv)
          for index in range(len(workers))]
