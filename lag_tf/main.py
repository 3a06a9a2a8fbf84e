r"""lag_tf's binary: parse gin, create the strategy, run the experiment the gin files declare.

  python -m lag_tf.main --gin_file=gin/experiments/quickstart.gin --model_dir=/tmp/quickstart

Flags live here and nowhere else. Exit codes: 0 done; 2 bad input (flags, gin files, config,
model dir), reported as one line on stderr before anything is written or trained; 1 a failure
during the run (e.g. divergence), also reported as one line.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402

from absl import app, flags, logging  # noqa: E402

from lag_tf import config_io  # noqa: E402
from lag_tf.experiments import run_experiment  # noqa: E402
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


def _fail(code: int, message: str) -> None:
  print(f"error: {config_io.one_line(message)}", file=sys.stderr, flush=True)
  sys.exit(code)


def main(argv) -> None:
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
  except (ValueError, RuntimeError) as error:
    _fail(EXIT_BAD_INPUT, str(error))
  chief = strategy_lib.is_chief(strategy)
  try:
    config_io.prepare_model_dir(FLAGS.model_dir, write_config=chief,
                                allow_config_change=FLAGS.allow_config_change)
  except config_io.ConfigError as error:
    _fail(EXIT_BAD_INPUT, str(error))

  logging.info("Strategy %s with %d replicas; model dir %s", type(strategy).__name__,
               strategy.num_replicas_in_sync, FLAGS.model_dir)
  try:
    run_experiment(strategy, FLAGS.model_dir)
  except (ValueError, TypeError) as error:
    # Configuration problems found when gin calls a configurable (e.g. a bad value).
    _fail(EXIT_BAD_INPUT, str(error))
  except RuntimeError as error:
    _fail(EXIT_RUN_FAILED, str(error))
  finally:
    if chief:
      config_io.write_operative_config(FLAGS.model_dir)


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
