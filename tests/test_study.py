"""The correlation study: eval cadence, the smoke study end to end, and its report."""

import os

from lag_tf import config_io
from lag_tf import configurables  # noqa: F401  Registers every configurable.
from lag_tf.analysis.report import build_report
from lag_tf.experiments.study import study_eval_steps, study_experiment
from lag_tf.model_dir_store import read_metrics
from lag_fixtures import strategy


def test_eval_cadence_is_dense_early_then_log_spaced():
  steps = study_eval_steps(1000, dense_every=10, dense_until=50, log_points=5)
  assert steps[:6] == [0, 10, 20, 30, 40, 50] and steps[-1] == 1000
  later = steps[6:]
  ratios = [b / a for a, b in zip([50] + later[:-1], later)]
  assert len(later) == 5 and max(ratios) / min(ratios) < 1.1  # Geometric spacing.
  assert study_eval_steps(30, 3, 30, 0) == list(range(0, 31, 3))


def test_smoke_study_runs_and_reports(tmp_path, data_dir):
  config_io.parse(["experiments/correlation_study_smoke.gin"], [f"DATA_DIR = '{data_dir}'"])
  model_dir = str(tmp_path)
  result = study_experiment(strategy(), model_dir)
  assert result["candidates"] == ["stack", "random_top", "zero_top"] and not result["failed"]
  for name in result["candidates"]:
    records = read_metrics(os.path.join(model_dir, "candidates", name, "metrics.jsonl"))
    eval_steps = [r.step - 30 for r in records if r.eval_loss is not None]
    assert eval_steps == list(range(0, 31, 3)), name
  headline = build_report(model_dir, num_resamples=50)
  assert headline["final_step"] == 30 and headline["finished"]
  assert os.path.exists(tmp_path / "report" / "report.md")
  assert {os.path.basename(p) for p in headline["plots"].values()} >= {"eval_curves.png",
                                                                     "correlation.png"}


# The worker split (every other candidate per worker): tests/test_plan.py, with its FLOPs.
