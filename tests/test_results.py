"""docs/results.md comes from committed data: `benchmarks/results_doc.py` regenerates it from
the compact run records under benchmarks/results/ (written by `python -m benchmarks.speedup
--results`) byte for byte, and its tables are recomputed here one by one too, so a documented
number cannot drift from its data."""

import json
import math
import os

import pytest

from benchmarks.speedup.budget import schedule_of
from benchmarks.speedup.records import read_records
from benchmarks.speedup.report import frontier_table, methods_table
from doc_fixtures import RESULTS, read
from main_fixtures import load_benchmark

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DECODER = os.path.join(REPO, "benchmarks", "results", "speedup_small", "decoder")
LONG = os.path.join(REPO, "benchmarks", "results", "speedup_small_long", "decoder")
ENCODER = os.path.join(REPO, "benchmarks", "results", "speedup_small", "encoder")


def _results_doc() -> str:
  return read(RESULTS)


def test_the_results_document_is_what_its_generator_writes_from_the_records(tmp_path):
  """`python benchmarks/results_doc.py` (in this process) into a temporary file: the committed
  docs/results.md is that file, byte for byte."""
  out = tmp_path / "results.md"
  assert load_benchmark("results_doc").main(["--out", str(out)]) == 0
  with open(os.path.join(REPO, RESULTS), "rb") as committed:
    assert out.read_bytes() == committed.read(), (
        "docs/results.md is stale: run python benchmarks/results_doc.py")


def test_the_documented_frontier_table_is_the_committed_runs_table():
  records = read_records(DECODER)
  assert records, f"no committed run records under {DECODER}/runs"
  assert frontier_table(records, seed=0) in _results_doc()


def test_the_documented_methods_table_is_the_committed_runs_table():
  assert methods_table(read_records(DECODER), seed=0) in _results_doc()


@pytest.mark.parametrize("results", [DECODER, LONG, ENCODER])
def test_committed_records_are_whole_runs_of_the_suite(results):
  kind = os.path.basename(results)
  assert read_records(results)
  for record in read_records(results):
    run = record.run
    assert run.kind == kind and run.bindings[0] == f"TransformerConfig.kind = '{kind}'"
    flops = [point[0] for point in record.curve]
    assert flops == sorted(flops) and len(flops) >= 2, run.method
    if run.finished:  # A finished run spent its planned FLOPs (a race: at most those).
      assert flops[-1] <= run.plan.total_flops * 1.001, run.method
      if run.method != "race_gradual":
        assert flops[-1] == pytest.approx(run.plan.total_flops, rel=0.01), run.method


@pytest.mark.parametrize("results", [DECODER, ENCODER])
def test_the_documented_headline_is_the_committed_runs_headline(tmp_path, results):
  """The suite's report rebuilt from the committed records alone (no run dirs) gives the
  pre-registered line, its table over seeds (without the wall-time column: the runs shared the
  CPU), its seed-0 frontier and what each adaptive rule committed per seed."""
  from benchmarks.speedup.decision_costs import picks_table
  from benchmarks.speedup.report import build_speedup_report, headline_line
  headline = build_speedup_report(str(tmp_path / "no_run_dirs"), results_dir=results)
  doc = _results_doc()
  assert "    " + headline_line(headline) + "\n" in doc
  report = (tmp_path / "no_run_dirs" / "report" / "report.md").read_text()
  table = report[report.index("| method | final eval loss"):].split("\n\n")[0]
  without_wall = "\n".join(" | ".join(line.split(" | ")[:-1]) + " |"
                           for line in table.splitlines())
  assert without_wall in doc
  assert frontier_table(read_records(results), seed=0) in doc
  assert picks_table(read_records(results), ["gradual_stacking", "race_gradual",
                                             "init_loss_gradual", "lag_gradual"]) in doc


def test_what_a_rule_spent_on_each_candidate_adds_up_to_its_deciding_cost():
  """decision_costs charges a candidate its probe steps and decision evaluations in the suite's
  convention: over a run's candidates that is the run's deciding cost (the winner's probe steps
  are its training, not a cost)."""
  from benchmarks.speedup.decision_costs import candidate_spend, spend_table
  from benchmarks.speedup.runs import run_from_record
  records = [r for r in read_records(DECODER) if r.run.method in (
      "lag_gradual", "race_gradual", "init_loss_gradual") and r.run.finished]
  assert records
  names = {n for r in records for d in r.decisions for n in d.candidates}
  spends = [s for name in sorted(names) for s in candidate_spend(records, name)]
  for record in records:
    run, phases = record.run, record.run.plan.phases
    mine = [s for s in spends if (s.method, s.seed) == (run.method, run.seed)]
    winner_steps = sum(s.probe_steps * phases[s.stage].flops_per_step for s in mine
                       if s.picked)
    assert sum(s.flops for s in mine) - winner_steps == pytest.approx(
        run_from_record(record).overhead_flops, rel=1e-9), run.method
    for s in mine:  # A race's dropped candidate trained to the look that dropped it.
      assert s.left_race_at is None or s.probe_steps == s.left_race_at
  table = spend_table(read_records(DECODER), "copy_top")
  rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in table.splitlines()[2:]}
  assert sorted(rows) == ["init_loss_gradual", "lag_gradual", "race_gradual"]
  race = [s for s in candidate_spend(records, "copy_top") if s.method == "race_gradual"]
  assert rows["race_gradual"][1:4] == [str(len({s.seed for s in race})), str(len(race)),
                                       str(sum(s.picked for s in race))]
  assert rows["race_gradual"][5] == ", ".join(
      map(str, sorted({s.left_race_at for s in race if s.left_race_at is not None}))) or "-"


STUDY = os.path.join(REPO, "benchmarks", "results", "correlation_study_decoder_small")


def test_the_documented_decoder_study_tables_are_the_committed_study(tmp_path):
  """The decoder correlation study's committed metrics (every candidate's metrics.jsonl and
  candidate.json, per seed) rebuild the results document's two tables: the headline and rho by
  probe step."""
  import shutil
  from lag_tf.analysis import report, runs, summary
  copy = str(tmp_path / "study")
  shutil.copytree(STUDY, copy)
  headline = report.build_report(copy)
  assert headline["num_candidates"] == 4 and headline["finished"]
  doc = _results_doc()
  assert "\n".join(report.headline_table(headline["rows"])) in doc
  study = summary.summarize_study(runs.study_table(runs.read_experiment(copy).study))
  assert "\n".join(report.step_table(study, range(0, 55, 5), rewarmup_steps=20)) in doc


NOISY = os.path.join(REPO, "benchmarks", "results", "speedup_small_noisy_pool", "decoder")


def test_the_documented_noisy_pool_tables_are_the_committed_runs_tables():
  """docs/results.md "A pool where the choice matters": what each rule paid for the clearly bad
  candidate, and what each method committed, recomputed from the variant's committed records."""
  from benchmarks.speedup.decision_costs import picks_table, spend_table
  records = read_records(NOISY)
  assert {r.run.method for r in records} == {
      "scratch", "gradual_stacking", "race_gradual", "lag_gradual", "init_loss_gradual"}
  doc = _results_doc()
  assert spend_table(records, "copy_top_noisy") in doc
  assert picks_table(records, ["gradual_stacking", "race_gradual", "init_loss_gradual",
                               "lag_gradual"]) in doc
  # The bad candidate is never committed, by any rule.
  assert "copy_top_noisy" not in {w for r in records for w in r.winners}


def _report_only_commands():
  return [line.strip() for line in _results_doc().splitlines()
          if line.strip().startswith("python -m benchmarks.speedup") and "--report_only" in line]


def test_every_committed_suite_has_a_documented_report_only_command():
  """Each suite's committed records (the noisy-pool variant's are read by their own test) can
  be redrawn by a documented command, which the next test runs."""
  import shlex
  documented = set()
  for command in _report_only_commands():
    argv = shlex.split(command)
    documented.add(os.path.join(argv[argv.index("--results") + 1],
                                argv[argv.index("--model_kind") + 1]))
  committed = {os.path.relpath(os.path.dirname(d), REPO)
               for d, _, _ in os.walk(os.path.join(REPO, "benchmarks", "results"))
               if os.path.basename(d) == "runs" and "noisy_pool" not in d
               and "_tuning" not in d}  # Tuning grids: tables in docs/results.md, no report.
  assert os.path.relpath(DECODER, REPO) in committed
  assert documented == committed


@pytest.mark.parametrize("command", _report_only_commands())
def test_the_documented_report_only_command_redraws_the_report_from_the_records(tmp_path,
                                                                               command, capsys):
  """The results document's `--report_only` commands, as written (the /tmp out dir moved into
  tmp_path; the command's main in this process, where TensorFlow is already imported): each
  trains nothing, writes the report and both plots, prints the documented pre-registered line
  and leaves the committed records as they are."""
  import shlex
  from benchmarks.speedup import __main__ as suite_command
  python, option, module, *argv = shlex.split(command)
  assert (python, option, module) == ("python", "-m", "benchmarks.speedup"), command
  argv = [str(tmp_path / "out") if a.startswith("/tmp/") else a for a in argv]
  kind = argv[argv.index("--model_kind") + 1]
  results = os.path.join(REPO, argv[argv.index("--results") + 1], kind)
  argv[argv.index("--results") + 1] = os.path.join(REPO, argv[argv.index("--results") + 1])
  runs = os.path.join(results, "runs")
  before = {os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
            for d, _, files in os.walk(runs) for f in files}
  capsys.readouterr()
  assert suite_command.main(argv) == 0, capsys.readouterr().err[-2000:]
  stdout = capsys.readouterr().out
  report = tmp_path / "out" / kind / "report"
  assert {"report.md", "frontier.png", "loss_vs_flops.png"} <= set(os.listdir(report))
  with open(os.path.join(results, "report.md")) as committed:  # Not stale.
    assert (report / "report.md").read_text() == committed.read()
  headline = stdout.strip().splitlines()[-1]
  assert headline.startswith("speedup: ") and "    " + headline + "\n" in _results_doc()
  after = {os.path.join(d, f): os.path.getmtime(os.path.join(d, f))
           for d, _, files in os.walk(runs) for f in files}
  assert after == before


def test_a_shared_frontier_dir_adds_only_the_suites_own_grid_and_seeds(tmp_path):
  """Suites whose grids meet share one --frontier_dir (small_long reuses three of small's runs,
  which have five seeds to its two): the report and the export read only the suite's grid and
  seeds, so what else the dir holds changes neither the frontier nor the committed records."""
  from benchmarks.speedup.runs import Scope, committed_runs, read_frontier, read_suite
  scratch = read_suite(str(tmp_path / "none"), DECODER)["scratch"]
  grid = Scope(frontier_grid=("frontier_L1_s1078", "frontier_L4_s900"))
  every = read_frontier(str(tmp_path / "none"), scratch, DECODER)
  mine = read_frontier(str(tmp_path / "none"), scratch, DECODER, grid)
  frontier = committed_runs(DECODER, frontier=True)
  for seed in scratch:
    assert sum(map(len, every[seed].values())) == len(frontier) + 1  # With the 4-layer scratch.
    def points(run):  # Every evaluation of the run: the frontier is their envelope.
      return list(zip(run.curve.flops, run.curve.losses))
    assert mine[seed] == {1: [points(frontier["frontier_L1_s1078"][seed])],
                          4: sorted([points(frontier["frontier_L4_s900"][seed]),
                                     points(scratch[seed])], key=lambda curve: curve[-1])}
  assert len(scratch) == 5
  two_seeds = Scope(frontier_grid=grid.frontier_grid, seeds=(0, 1))
  scratch_of_two = read_suite(str(tmp_path / "none"), DECODER, scope=two_seeds)["scratch"]
  assert sorted(scratch_of_two) == [0, 1]
  assert read_frontier(str(tmp_path / "none"), scratch_of_two, DECODER, two_seeds) == {
      seed: mine[seed] for seed in (0, 1)}


def _summary(tmp_path, results, name, seeds=None):
  """The suite's report rebuilt from committed records alone: its summary.json."""
  import json
  from benchmarks.speedup.report import build_speedup_report
  from benchmarks.speedup.runs import Scope
  build_speedup_report(str(tmp_path / name), results_dir=results, scope=Scope(seeds=seeds))
  with open(tmp_path / name / "report" / "summary.json") as f:
    return json.load(f)


def test_the_documented_budget_trend_tables_are_the_committed_runs_tables(tmp_path):
  """docs/results.md "The trend with budget": the long suite's seed-0 frontier, and both
  budgets side by side (the small suite over all its seeds and over the long suite's two),
  recomputed from the two suites' committed records."""
  from benchmarks.speedup.report import budget_trend_table
  records = read_records(LONG)
  assert {r.run.seed for r in records} == {0, 1} and all(r.run.finished for r in records)
  doc = _results_doc()
  assert frontier_table(records, seed=0) in doc
  long_summary = _summary(tmp_path, LONG, "long")
  assert long_summary["headline"]["seeds"] == [0, 1]
  table = budget_trend_table(
      [("1x: 600 steps, 1.5 tokens/parameter", _summary(tmp_path, DECODER, "small")),
       ("1x, seeds 0, 1", _summary(tmp_path, DECODER, "small_two", seeds=(0, 1))),
       ("3x: 1800 steps, 4.4 tokens/parameter", long_summary)],
      ["scratch", "gradual_stacking", "race_gradual", "init_loss_gradual", "lag_gradual"])
  assert table in doc


def _envelope_flops(points, loss):
  """FLOPs at which the lower envelope of (FLOPs, loss) `points` first reaches `loss`, linear in
  log FLOPs between the envelope's points; None if it never does. Written apart from
  benchmarks/speedup/frontier.py, as a reader of the records would."""
  best, previous = math.inf, None
  for flops, value in sorted(points):
    if value >= best:
      continue
    if value <= loss:
      if previous is None:
        return flops
      flops_before, loss_before = previous
      share = (loss_before - loss) / (loss_before - value)
      return math.exp(math.log(flops_before) + share * math.log(flops / flops_before))
    best, previous = value, (flops, value)
  return None


@pytest.mark.parametrize("suite_dir", [DECODER, ENCODER])
def test_the_fixed_size_headline_is_the_envelope_of_every_target_size_scratch_point(suite_dir):
  """The issue's check, from the records alone: per seed, the FLOPs the envelope of every
  evaluation of every target-size scratch run (the suite's `scratch` and each frontier run at
  the target depth, under every schedule) needs to reach gradual stacking's final loss, over
  the FLOPs gradual stacking spent; their geometric mean is summary.json's headline within 2%.
  The target-size runs span at least four learning-rate settings."""
  records = [r for r in read_records(suite_dir) if r.run.finished]
  target = next(r.layers for r in records if r.run.method == "scratch")
  scratch = [r for r in records if r.layers == target
             and (r.run.method == "scratch" or r.run.method.startswith("frontier_"))]
  settings = {schedule_of(r.run.method) for r in scratch}  # None: the shared schedule.
  assert len(settings) >= 4, settings
  ratios = []
  for grown in (r for r in records if r.run.method == "gradual_stacking"):
    flops, loss = grown.curve[-1]
    points = [p for r in scratch if r.run.seed == grown.run.seed for p in r.curve]
    needed = _envelope_flops(points, loss)
    assert needed is not None, grown.run.seed  # Else the headline would be a bound.
    ratios.append(needed / flops)
  recomputed = math.exp(sum(map(math.log, ratios)) / len(ratios))
  with open(os.path.join(suite_dir, "summary.json")) as f:
    headline = json.load(f)["headline"]["fixed_size_speedup"]
  assert recomputed == pytest.approx(float(headline[0]), rel=0.02)
