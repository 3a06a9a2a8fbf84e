r"""lag_tf's binary: parse gin, create the strategy, run the experiment the gin files declare.

  python -m lag_tf.main --gin_file=gin/experiments/quickstart.gin --model_dir=/tmp/quickstart

Flags live here and nowhere else. Exit codes, each non-zero one with one line on stderr:
  0    done.
  1    the run failed (e.g. the base model diverged; its last good checkpoint is kept).
  2    bad input (flags, gin files, config values, model dir, or the model dir is in use by
       another live process), found before any training; nothing existing is touched.
  143  preempted (SIGTERM): the current loop finished and a checkpoint was saved; rerun the
       same command to resume (also after kill -9: every write is resumable).
One process owns a model dir at a time (`<model_dir>/run.lock`, see lag_tf/run_lock.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from lag_tf import config_io, run_lock  # noqa: E402
from lag_tf.experiments import run_experiment  # noqa: E402
from lag_tf.training import determinism, preemption  # noqa: E402
from lag_tf.training import strategy as strategy_lib  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin files, in order; later ones override earlier.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, e.g. \"Trainer.train_steps=100\".")
flags.DEFINE_multi_string("gin_search_paths", [],
                          "Directories searched for gin files and includes (the shipped gin/ "
                          "directory is always searched last).")
flags.DEFINE_string("model_dir", None, "Experiment directory (local path or gs://).")
flags.DEFINE_bool("allow_config_change", False,
                  "Resume in a model dir whose config.gin differs from this run's config.")

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 1
EXIT_PREEMPTED = preemption.EXIT_PREEMPTED


def _fail(code: int, message: str) -> None:
  print(f"error: {config_io.one_line(message)}", file=sys.stderr, flush=True)
  sys.exit(code)


def main(argv) -> None:
  # First: a SIGTERM from here on stops at the next loop boundary with a checkpoint.
  preemption.install()
  if len(argv) > 1:
    _fail(EXIT_BAD_INPUT, f"unexpected arguments {argv[1:]}; use --gin_file/--gin_bindings")
  if not FLAGS.model_dir:
    _fail(EXIT_BAD_INPUT, "--model_dir is required")
  if not FLAGS.gin_file:
    _fail(EXIT_BAD_INPUT, "give at least one --gin_file (e.g. gin/experiments/quickstart.gin)")
  try:
    config_io.parse(FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.gin_search_paths)
  except config_io.ConfigError as error:
    _fail(EXIT_BAD_INPUT, str(error))

  # Devices and the strategy come before any other TF op (DESIGN.md).
  try:
    strategy_lib.configure_devices()
    strategy = strategy_lib.make_strategy()
    # TF's multi-worker runtime installs its own SIGTERM handler: take SIGTERM back.
    preemption.install(force=True)
    determinism.configure_determinism()
  except (ValueError, RuntimeError) as error:
    _fail(EXIT_BAD_INPUT, str(error))
  chief = strategy_lib.is_chief(strategy)
  had_config = config_io.has_config(FLAGS.model_dir)
  lock = run_lock.RunLock(FLAGS.model_dir)
  try:
    config_io.check_model_dir_writable(FLAGS.model_dir)
    if chief:  # The chief owns the dir for the job; other workers only write scratch copies.
      lock.acquire()
    config_io.prepare_model_dir(FLAGS.model_dir, write_config=chief,
                                allow_config_change=FLAGS.allow_config_change)
  except (config_io.ConfigError, run_lock.LockHeldError) as error:
    lock.release()
    _fail(EXIT_BAD_INPUT, str(error))

  logging.info("Strategy %s with %d replicas; model dir %s", type(strategy).__name__,
               strategy.num_replicas_in_sync, FLAGS.model_dir)
  try:
    run_experiment(strategy, FLAGS.model_dir)
  except (ValueError, TypeError) as error:
    # Configuration problems found when gin calls a configurable (e.g. a bad value). The
    # config.gin written above is no result: left behind it would refuse the corrected rerun.
    if chief and not had_config:
      config_io.discard_unused_config(FLAGS.model_dir)
    _fail(EXIT_BAD_INPUT, str(error))
  except preemption.Preempted as stopped:
    print(f"preempted: {config_io.one_line(str(stopped))}", file=sys.stderr, flush=True)
    sys.exit(EXIT_PREEMPTED)
  except RuntimeError as error:
    _fail(EXIT_RUN_FAILED, str(error))
  finally:
    if chief and config_io.has_config(FLAGS.model_dir):
      config_io.write_operative_config(FLAGS.model_dir)
    lock.release()


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
