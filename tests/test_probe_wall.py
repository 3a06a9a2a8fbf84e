"""benchmarks/probe_wall.py end to end on a CI-sized LAG run: it prints both ratios, and the
evaluations it adds to the probe FLOPs are the ones the probes ran, counted by hand."""

import os
import re
import subprocess
import sys

from lag_fixtures import TINY_BINDINGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_probe_wall_counts_training_and_evaluation_flops(tmp_path, data_dir):
  bindings = TINY_BINDINGS + [f"DATA_DIR = '{data_dir}'", "lag_experiment.base_steps = 10",
                              "lag_experiment.continue_steps = 6"]
  command = [sys.executable, "benchmarks/probe_wall.py", f"--model_dir={tmp_path / 'run'}"]
  command += [f"--gin_bindings={b}" for b in bindings]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=REPO))
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  # The quickstart's 10 depth candidates, 6 probe steps each, evaluated at probe steps 0, 2, 4
  # and at the end (6).
  assert "10 candidates, 60 probe steps, 40 probe evaluations" in lines[0]
  only_training = float(re.fullmatch(r"probe_wall_overhead_training_flops_only=(\S+)",
                                     lines[-2]).group(1))
  overhead = float(re.fullmatch(r"probe_wall_overhead=(\S+)", lines[-1]).group(1))
  assert overhead > 0
  # Per candidate: 4 evals x 4 batches of 8 sequences, forward = 1/3 of a training token's
  # FLOPs, against 6 steps of 8 sequences: eval / training FLOPs = 16 / (3 x 6) = 8 / 9.
  assert abs(only_training / overhead - (1 + 8 / 9)) < 2e-3 * only_training / overhead
  assert len(os.listdir(tmp_path / "run" / "candidates")) == 10  # --model_dir is kept.
