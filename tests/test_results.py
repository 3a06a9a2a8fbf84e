"""README's tables come from committed data: every number in the "Does it pay?" frontier table
is recomputed here from the compact run records under benchmarks/results/ (written by
`benchmarks/speedup.py --results`), so a README number cannot drift from its data."""

import os

import pytest

from lag_tf.analysis.speedup_report import frontier_table, methods_table
from lag_tf.analysis.speedup_runs import read_results

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECODER = os.path.join(REPO, "benchmarks", "results", "speedup_small", "decoder")


def _readme() -> str:
  with open(os.path.join(REPO, "README.md")) as f:
    return f.read()


def test_the_readme_frontier_table_is_the_committed_runs_table():
  records = read_results(DECODER)
  assert records, f"no committed run records under {DECODER}/runs"
  assert frontier_table(records, seed=0) in _readme()


def test_the_readme_methods_table_is_the_committed_runs_table():
  assert methods_table(read_results(DECODER), seed=0) in _readme()


def test_committed_records_are_whole_runs_of_the_suite():
  for record in read_results(DECODER):
    run, curve = record["run"], record["curve"]
    assert run["kind"] == "decoder" and run["bindings"][0] == "TransformerConfig.kind = 'decoder'"
    flops = [point[0] for point in curve]
    assert flops == sorted(flops) and len(curve) >= 2, run["method"]
    if run["finished"]:  # A finished run spent its planned FLOPs (a race: at most those).
      assert flops[-1] <= run["plan"]["total_flops"] * 1.001, run["method"]
      if run["method"] != "race_gradual":
        assert flops[-1] == pytest.approx(run["plan"]["total_flops"], rel=0.01), run["method"]


def test_the_readme_headline_is_the_committed_runs_headline(tmp_path):
  """The suite's report rebuilt from the committed records alone (no run dirs) gives README's
  pre-registered line."""
  from lag_tf.analysis.speedup_report import build_speedup_report, headline_line
  headline = build_speedup_report(str(tmp_path / "no_run_dirs"), results_dir=DECODER)
  assert "    " + headline_line(headline) + "\n" in _readme()
