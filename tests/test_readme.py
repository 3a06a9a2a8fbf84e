"""README stays true and short: its two commands (the test one is the one CI runs), its headline
table and the reading of it (recomputed from the committed records), the shape of its
summary.md excerpt, its links; and the user documentation holds no development history."""

import dataclasses
import json
import os
import re

import numpy as np
import pytest

from doc_fixtures import DESIGN, README, RESULTS, USAGE, REPO, code_blocks, documents, read
from main_fixtures import load_benchmark

MAX_README_LINES = 250


def test_readme_has_two_commands_and_ci_runs_the_test_one():
  setup, tests = [block.strip() for block in code_blocks(read(README), "")[:2]]
  assert "pip install -r requirements.txt" in setup and "python -m lag_tf.main" in setup
  gin_file = re.search(r"--gin_file=(\S+)", setup).group(1)
  assert os.path.isfile(os.path.join(REPO, gin_file))
  ci_commands = [line.strip() for line in read(".ci/run").splitlines()
                 if line.strip() and not line.strip().startswith("#")]
  assert ci_commands[-1] == tests


def test_readme_is_short_and_the_docs_exist():
  assert len(read(README).splitlines()) <= MAX_README_LINES
  for path in (USAGE, DESIGN, RESULTS):
    assert os.path.isfile(os.path.join(REPO, path)), path


# History belongs in CHANGELOG.md (and git), not in user documentation.
HISTORY = [
    (r"\b(19|20)\d\d-[01]\d(-[0-3]\d)?\b", "a date"),
    (r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.? (19|20)\d\d\b", "a date"),
    (r"\bsessions?\b", "the word session"),
    (r"\bissues?\b|#\d+\b", "an issue"),
    (r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b", "a commit hash"),
]


@pytest.mark.parametrize("path", list(documents()))
def test_user_documentation_holds_no_history(path):
  text = read(path)
  for pattern, what in HISTORY:
    found = re.search(pattern, text, re.I if what != "a commit hash" else 0)
    assert not found, f"{path} holds {what}: {found.group(0)!r}"


def test_links_resolve():
  for path, text in documents().items():
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
      if not re.match(r"[a-z]+://", target):
        full = os.path.normpath(os.path.join(REPO, os.path.dirname(path), target))
        assert os.path.exists(full), (path, target)


# ---- the headline ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def results_doc():
  return load_benchmark("results_doc")


def test_the_headline_table_is_the_committed_records_table(results_doc):
  assert results_doc.headline_table() in read(README)


def test_what_readme_reads_off_the_table_holds_on_the_records(results_doc):
  """README's prose says, without numbers: on the decoder growth paid in the fixed-size sense,
  less at three times the budget than at the small one on the same seeds; on the encoder,
  against its tuned scratch, within noise of 1; below 1 in the any-size sense (a shallower model
  from scratch ends lower, in every seed); neither the race nor fixed-k LAG beat the fixed
  strategy; tuned as scratch was, gradual stacking's decoder speedup rises."""
  from benchmarks.speedup.records import read_records
  from benchmarks.speedup.report import PREREGISTERED_LAG
  small, long_ = results_doc.DECODER, results_doc.LONG
  fixed = {suite: results_doc.suite_summary(suite)[0]["fixed_size_speedup"]
           for suite in results_doc.REPORTED}
  assert results_doc.speedup_reading(*fixed[small][1:]) == "paid"
  assert results_doc.speedup_reading(*fixed[results_doc.ENCODER][1:]) == "within noise of 1"
  methods = results_doc.suite_summary(small)[1]["methods"]
  assert (float(methods["gradual_stacking_wsd_2e-3"]["fixed_size_ci"][0])
          > float(methods["gradual_stacking"]["fixed_size_ci"][0]))
  long_fixed = results_doc.suite_summary(long_)[1]["methods"]["gradual_stacking"]
  small_same_seeds = results_doc.suite_summary(
      small, results_doc.Scope(seeds=(0, 1)))[1]["methods"]["gradual_stacking"]
  assert float(long_fixed["fixed_size_ci"][0]) < float(small_same_seeds["fixed_size_ci"][0])
  assert results_doc.speedup_reading(*long_fixed["fixed_size_ci"][1:]) == "paid"
  for suite in results_doc.REPORTED:
    headline = results_doc.suite_summary(suite)[0]
    assert results_doc.speedup_reading(*headline["frontier_speedup"][1:]) != "paid", suite
    assert float(headline["frontier_speedup"][0].lstrip("≤> ")) < 1, suite
    records = read_records(suite.records_dir)
    target = results_doc.suite_setup(records).layers
    assert all(depth < target for depth in results_doc.best_depth_at_budget(records).values())
    for method in PREREGISTERED_LAG:
      assert results_doc.difference_reading(*headline[f"{method}_vs_fixed"][1:]) != "better"


# ---- the summary.md excerpt ----------------------------------------------------------------------

def _shape(line: str, names) -> str:
  """A summary line with its numbers, candidate names, verdict and yes/no made generic."""
  line = re.sub(r"growing beat scratch|scratch beat growing|within noise \([^)]*\)",
                "<verdict>", line)
  line = re.sub(r"<(?!verdict>)[a-z ]+>", "#", line)
  line = re.sub(r"\b(" + "|".join(sorted(names, key=len, reverse=True)) + r")\b", "NAME", line)
  line = re.sub(r"[-+]?\d+(,\d{3})*(\.\d+)?%?", "#", line)
  line = re.sub(r"\| (yes|no) \|$", "| BOOL |", line)
  return re.sub(r"NAME( at #)?(, NAME( at #)?)*", r"NAME\1...", line)


def _quickstart_seed_spread() -> float:
  return float(re.search(r"^lag_experiment\.seed_spread = ([0-9.]+)$",
                         read("gin/experiments/lag_quickstart.gin"), re.M).group(1))


def test_the_quickstart_verdict_is_the_one_its_committed_seeds_give():
  """README's quickstart verdict and figures are the committed seeds'
  (benchmarks/results/quickstart_seeds/seeds.json, written by benchmarks/quickstart_seeds.py):
  the gin file's seed spread is their standard deviation, and every seed's difference is within
  two of its noise, so each of them (and a machine that runs like another seed) says `within
  noise`."""
  with open(os.path.join(REPO, "benchmarks", "results", "quickstart_seeds", "seeds.json")) as f:
    committed = json.load(f)
  spread, runs = committed["spread"], committed["runs"]
  assert _quickstart_seed_spread() == round(spread["sd"], 4) and len(runs) >= 5
  differences = [r["difference"] for r in runs]
  text = " ".join(read(README).split())
  assert (f"over seeds 0-{len(runs) - 1} the difference is {spread['mean']:+.3f} "
          f"[{spread['low']:+.3f}, {spread['high']:+.3f}] nats, from {min(differences):+.3f} to "
          f"{max(differences):+.3f}") in text
  assert spread["low"] < 0 < spread["high"] and "For the quickstart it reads `within noise`" in text
  assert all(abs(d) <= 2 * _quickstart_seed_spread() for d in differences)


def test_the_summary_excerpt_has_the_shape_summary_md_is_written_in():
  """Every line of README's annotated excerpt is a line that summary.md's code writes, up to
  its numbers and names: rendered here from a committed race decision of the suite (a tie
  added), and the three verdicts."""
  from benchmarks.speedup.records import read_records
  from lag_tf.analysis.summary import scratch_comparison
  from lag_tf.experiments.summaries import lag_markdown
  from lag_tf.experiments.summaries import summary_table
  records = read_records(os.path.join(REPO, "benchmarks", "results", "speedup_small", "decoder"))
  record, other = next(  # A race where one loser left at a look and another stayed in.
      (d, stayed) for r in records if r.run.method == "race_gradual" for d in r.decisions
      for stayed, c in d.candidates.items()
      if stayed != d.winner and c.left_race_at is None and d.race.get("left"))
  record = dataclasses.replace(record, tied_with=[record.winner, other])
  flops = {"base": 1e12, "probes": 1e12, "decision evals": 5e11, "continuation": 4e12,
           "total": 6.5e12}
  rng = np.random.default_rng(0)
  losses = [list(rng.normal(2.0, 0.1, 8)) for _ in range(2)]
  written = [lag_markdown(summary_table(record), record.winner, 630, 2.1, f"candidates/"
                              f"{record.winner}/ckpt", flops,
                              scratch_comparison(2.0 + delta, losses[0], 2.0, losses[1], 677,
                                                 _quickstart_seed_spread()))
             for delta in (-1.0, 0.0, 1.0)]
  pool = re.findall(r"^(\w+)/growth\.Candidate\.name", read("gin/growth/depth_pool.gin"), re.M)
  names = set(pool) | set(record.candidates)
  shapes = {_shape(line, names) for text in written for line in text.splitlines()}
  excerpt = code_blocks(read(README), "text")[0]
  assert "<verdict>" in excerpt
  lines = [line for line in excerpt.splitlines() if line.strip() and line != "..."]
  assert len(lines) >= 10
  for line in lines:
    assert _shape(line, names) in shapes, line
  assert len({_shape(t, names) for t in written}) == 1  # The verdict is all that differed.
