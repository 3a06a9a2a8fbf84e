r"""Writes DIR/report/report.md (+ PNGs) for a study, LAG or gradual run and prints the headline.

  python -m lag_tf.analyze --experiment_dir=/tmp/study [--target_rho=0.8] [--bootstrap=1000]

Exit codes: 0 written; 2 bad input (missing or empty directory, bad flag values), reported as
one `error:` line on stderr. Reads files only (no TensorFlow unless the directory is a URL).
"""

from __future__ import annotations

from absl import app, flags

from lag_tf import model_dir_store as store
from lag_tf.analysis import report
from lag_tf.console import fail

FLAGS = flags.FLAGS
flags.DEFINE_string("experiment_dir", None, "Study, LAG or gradual run directory to analyze.")
flags.DEFINE_float("target_rho", 0.8, "Spearman rho that loss(k) must reach (and keep) for k.")
flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples for the confidence intervals.")
flags.DEFINE_integer("seed", 0, "Seed of the bootstrap's random numbers.")


def main(argv) -> None:
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}; use --experiment_dir")
  if not FLAGS.experiment_dir:
    fail("--experiment_dir is required")
  if FLAGS.bootstrap < 1:
    fail(f"--bootstrap={FLAGS.bootstrap}: expected >= 1")
  if not -1.0 <= FLAGS.target_rho <= 1.0:
    fail(f"--target_rho={FLAGS.target_rho}: expected a value in [-1, 1]")
  try:
    headline = report.build_report(FLAGS.experiment_dir, target_rho=FLAGS.target_rho,
                                   num_resamples=FLAGS.bootstrap, seed=FLAGS.seed)
  except store.ModelDirError as error:  # Missing, empty, or a damaged record: one line.
    fail(str(error))
  print(report.format_headline(headline), flush=True)


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
