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
`--dry_run` checks everything and prints the plan (phases, FLOPs, time) without training
(lag_tf/dry_run.py); bindings without effect are warned about (`--strict_bindings`: exit 2).
TensorFlow's start-up banners and gin's include lines show only with `-v 1`.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from lag_tf import console  # noqa: E402

with console.native_stderr_hidden(not console.verbose_requested(sys.argv)):
  from lag_tf import bindings as bindings_lib, config_io, dir_ownership, dry_run  # noqa: E402
  from lag_tf import configurables  # noqa: E402,F401  Before any gin file is parsed.
  from lag_tf import run_lock  # noqa: E402
  from lag_tf.experiments import run_experiment  # noqa: E402
  from lag_tf.training import determinism, failures, preemption, progress  # noqa: E402
  from lag_tf.training import strategy as strategy_lib  # noqa: E402
  import tensorflow as tf  # noqa: E402
  # Device discovery, once per process, while native stderr is hidden: on a machine without a
  # GPU the `tensorflow` package logs a CUDA init failure (an E-level line that
  # TF_CPP_MIN_LOG_LEVEL=2 keeps) at the first look; bad input must print one line only.
  # Listing physical devices leaves logical devices and the multi-worker strategy unset.
  tf.config.list_physical_devices()

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin files, in order; later ones override earlier.")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, e.g. \"Trainer.train_steps=100\".")
flags.DEFINE_multi_string("gin_search_paths", [],
                          "Directories searched for gin files and includes (the shipped gin/ "
                          "directory is always searched last).")
flags.DEFINE_string("model_dir", None, "Experiment directory (local path or gs://).")
flags.DEFINE_bool("allow_config_change", False,
                  "Resume in a model dir whose config.gin differs from this run's config.")
flags.DEFINE_enum("dry_run", None, ["plan", "calibrate"],
                  "Check everything and print the plan without training or writing the model "
                  "dir; bare --dry_run means 'plan', 'calibrate' also times a few steps.")
flags.DEFINE_float("dry_run_flops_per_second", None,
                   "Throughput for --dry_run's wall-time estimate (default: an assumed figure).")
flags.DEFINE_bool("strict_bindings", False, "Exit 2 if a gin binding has no effect in this run.")
flags.DEFINE_bool("allow_non_empty", False,
                  "Start a run in an existing, non-empty dir that holds no lag_tf run (files "
                  "lag_tf did not write are never touched).")

EXIT_RUN_FAILED = 1
EXIT_PREEMPTED = preemption.EXIT_PREEMPTED


def main(argv) -> None:
  # First: a SIGTERM from here on stops at the next loop boundary with a checkpoint.
  preemption.install()
  if len(argv) > 1:
    console.fail(f"unexpected arguments {argv[1:]}; use --gin_file/--gin_bindings")
  if not FLAGS.model_dir:
    console.fail("--model_dir is required")
  if not FLAGS.gin_file:
    console.fail("give at least one --gin_file (e.g. gin/experiments/quickstart.gin)")
  console.hide_gin_file_lookups(logging.get_verbosity() < 1)
  recorded = []
  try:
    with bindings_lib.record(recorded):
      config_io.parse(FLAGS.gin_file, FLAGS.gin_bindings, FLAGS.gin_search_paths)
  except config_io.ConfigError as error:
    console.fail(str(error))
  if FLAGS.dry_run:
    _dry_run(recorded)
    return

  # Devices and the strategy come before any other TF op (docs/design.md).
  try:
    strategy_lib.configure_devices()
    strategy = strategy_lib.make_strategy()
    # TF's multi-worker runtime installs its own SIGTERM handler: take SIGTERM back.
    preemption.install(force=True)
    deterministic = determinism.configure_determinism()
  except (ValueError, RuntimeError) as error:
    console.fail(str(error))
  # A bad value is refused here, as --dry_run refuses it, before anything is logged: its
  # error line is all the user sees. The plan also finds the bindings without effect.
  try:
    the_plan = dry_run.check_run(strategy, strategy.num_replicas_in_sync).plan
  except (ValueError, TypeError) as error:
    console.fail(str(error))
  except Exception as error:  # pylint: disable=broad-except  # Advisory: the run checks again.
    logging.warning("Not checking the bindings: the plan failed (%s)", error)
    the_plan = None
  if the_plan is not None:
    _check_bindings(recorded, the_plan)
  # The whole run's ETA on every progress line counts down the plan's training FLOPs.
  run_progress = progress.RunProgress(the_plan.training_flops if the_plan is not None else None)
  chief = strategy_lib.is_chief(strategy)
  had_config = config_io.has_config(FLAGS.model_dir)
  lock = run_lock.RunLock(FLAGS.model_dir)
  try:
    if chief:  # The chief owns the dir for the job; other workers only write scratch copies.
      dir_ownership.check_model_dir_owner(FLAGS.model_dir, FLAGS.allow_non_empty)
    config_io.check_model_dir_writable(FLAGS.model_dir)
    if chief:
      lock.acquire()
      config_io.write_config(FLAGS.model_dir, FLAGS.allow_config_change)
  except (config_io.ConfigError, dir_ownership.ForeignDirError, run_lock.LockHeldError) as error:
    lock.release()
    console.fail(str(error))

  logging.info("Strategy %s with %d replicas; model dir %s%s", type(strategy).__name__,
               strategy.num_replicas_in_sync, FLAGS.model_dir,
               f"; {deterministic}" if deterministic else "")
  try:
    run_experiment(strategy, FLAGS.model_dir, run_progress=run_progress)
  except (ValueError, TypeError) as error:
    # Configuration problems found when gin calls a configurable (e.g. a bad value). The
    # config.gin written above is no result: left behind it would refuse the corrected rerun.
    if chief and not had_config:
      config_io.discard_unused_config(FLAGS.model_dir)
    console.fail(str(error))
  except preemption.Preempted as stopped:
    print(f"preempted: {console.one_line(str(stopped))}", file=sys.stderr, flush=True)
    sys.exit(EXIT_PREEMPTED)
  except failures.RESOURCE_ERRORS as error:  # Out of memory, disk full: one line, no traceback.
    console.fail(failures.describe(error, FLAGS.model_dir), EXIT_RUN_FAILED)
  except RuntimeError as error:
    console.fail(str(error), EXIT_RUN_FAILED)
  finally:
    if chief and config_io.has_config(FLAGS.model_dir):
      config_io.write_operative_config(FLAGS.model_dir)
    lock.release()


def _check_bindings(recorded, the_plan) -> None:
  warnings = bindings_lib.unused(recorded, the_plan)
  for warning in warnings:
    print(f"warning: {warning}", file=sys.stderr, flush=True)
  if warnings and FLAGS.strict_bindings:
    console.fail(f"{len(warnings)} binding(s) without effect (--strict_bindings); "
                 f"first: {warnings[0]}")


def _dry_run(recorded) -> None:
  try:
    text, the_plan = dry_run.run(FLAGS.model_dir, FLAGS.dry_run == "calibrate",
                                 FLAGS.dry_run_flops_per_second, FLAGS.allow_config_change)
  except (ValueError, TypeError, RuntimeError) as error:
    console.fail(str(error))
  print(text, flush=True)
  _check_bindings(recorded, the_plan)


def normalize_argv(argv):
  """A bare `--dry_run` means `--dry_run=plan` (absl's enum flags need a value)."""
  return ["--dry_run=plan" if a == "--dry_run" else a for a in argv]


def run() -> None:
  app.run(main, flags_parser=lambda argv: app.parse_flags_with_usage(normalize_argv(argv)))


if __name__ == "__main__":
  run()
