"""benchmarks/probe_wall.py end to end on a CI-sized LAG run (its main in this process): it
prints both ratios, and the evaluations it adds to the probe FLOPs are the ones the probes ran,
counted by hand."""

import os
import re

from lag_fixtures import TINY_BINDINGS
from main_fixtures import load_benchmark

# Three of the quickstart's ten candidates.
CI_POOL = ["ci_pool/growth.Pool.name = 'ci'",
           "ci_pool/growth.Pool.candidates = [@stack/growth.Candidate(), "
           "@zero_top/growth.Candidate(), @random_top/growth.Candidate()]",
           "lag_experiment.pool = @ci_pool/growth.Pool()"]


def test_probe_wall_counts_training_and_evaluation_flops(tmp_path, data_dir, capsys, monkeypatch):
  bindings = TINY_BINDINGS + CI_POOL + [f"DATA_DIR = '{data_dir}'",
                                        "lag_experiment.base_steps = 10",
                                        "lag_experiment.continue_steps = 6"]
  argv = ["probe_wall.py", f"--model_dir={tmp_path / 'run'}"]
  argv += [f"--gin_bindings={b}" for b in bindings]
  monkeypatch.setattr("sys.argv", argv)
  assert load_benchmark("probe_wall").main() == 0
  lines = capsys.readouterr().out.strip().splitlines()
  # 3 candidates, 6 probe steps each, evaluated at probe steps 0, 2, 4 and at the end (6).
  assert "3 candidates, 18 probe steps, 12 probe evaluations" in lines[0]
  only_training = float(re.fullmatch(r"probe_wall_overhead_training_flops_only=(\S+)",
                                     lines[-2]).group(1))
  overhead = float(re.fullmatch(r"probe_wall_overhead=(\S+)", lines[-1]).group(1))
  assert overhead > 0
  # Per candidate: 4 evals x 4 batches of 8 sequences, forward = 1/3 of a training token's
  # FLOPs, against 6 steps of 8 sequences: eval / training FLOPs = 16 / (3 x 6) = 8 / 9.
  assert abs(only_training / overhead - (1 + 8 / 9)) < 2e-3 * only_training / overhead
  assert len(os.listdir(tmp_path / "run" / "candidates")) == 3  # --model_dir is kept.
