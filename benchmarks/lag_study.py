"""The LAG correlation study as a table: how well the loss k steps after growth predicts the
final loss, on this machine.

  python benchmarks/lag_study.py                        # runs gin/experiments/correlation_study_tiny.gin
  python benchmarks/lag_study.py --experiment_dir=DIR   # reports a finished (or partial) study

Prints Spearman rho (with bootstrap CI) at step 0 and at 1%, 2%, 5%, 10% of T, the smallest k
with rho >= --target_rho (staying above it), and the regret of choosing at initialization versus
at that k. The numbers are whatever the study gives.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from lag_tf.analysis.report import build_report, format_headline  # noqa: E402


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--experiment_dir", default=None,
                      help="a study dir to report (default: run the tiny study first)")
  parser.add_argument("--model_dir", default="/tmp/lag_tf_study_tiny",
                      help="where to run the tiny study when --experiment_dir is not given")
  parser.add_argument("--target_rho", type=float, default=0.8)
  parser.add_argument("--bootstrap", type=int, default=1000)
  args = parser.parse_args()
  directory = args.experiment_dir
  if directory is None:
    directory = args.model_dir
    command = [sys.executable, "-m", "lag_tf.main",
               "--gin_file=gin/experiments/correlation_study_tiny.gin",
               f"--model_dir={directory}"]
    print("running:", " ".join(command), flush=True)
    if subprocess.call(command, cwd=REPO) != 0:
      print("error: the study run failed", file=sys.stderr)
      return 1
  headline = build_report(directory, target_rho=args.target_rho,
                          num_resamples=args.bootstrap)
  print(format_headline(headline))
  k = headline.get("smallest_k")
  print(f"lag_study: rho_init={headline.get('rho_init', float('nan')):.3f} "
        f"smallest_k={k if k is not None else 'none'} "
        f"regret_init={headline.get('regret_at_init', float('nan')):.4f} "
        f"regret_k={headline.get('regret_at_k', float('nan')) if k is not None else 'n/a'}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
