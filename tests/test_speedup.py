"""The growth-vs-scratch comparison: equal-budget plans, the speedup maths, and the smoke suite
end to end (every method runs, the report and the headline line are written)."""

import dataclasses
import json
import math
import os
import re
import shutil

import numpy as np
import pytest

from benchmarks.speedup import __main__ as suite_command
from benchmarks.speedup import budget, records
from benchmarks.speedup.frontier import Curve, compute_ratio, flops_to_reach, mean_ci
from doc_fixtures import USAGE, documents, read
from lag_tf import model_dir_store as store
from lag_tf.lag.gradual import StagePoolTemplate
from lag_tf.models import TransformerConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = TransformerConfig(kind="encoder", num_layers=4, d_model=64, num_heads=2, d_ff=256,
                           vocab_size=260, max_len=64)


def test_flops_to_reach_interpolates_the_first_crossing():
  curve = Curve([0, 10, 20, 30], [5.0, 3.0, 2.0, 2.5])
  assert flops_to_reach(curve, 4.0) == pytest.approx(5.0)
  assert flops_to_reach(curve, 2.0) == pytest.approx(20.0)
  assert flops_to_reach(curve, 1.9) is None
  assert flops_to_reach(curve, 6.0) == 0.0


def test_compute_ratio_above_and_below_one():
  scratch = Curve([0, 100], [5.0, 3.0])
  faster = Curve([0, 50, 100], [5.0, 3.0, 2.5])
  ratio, reached = compute_ratio(faster, scratch, target=3.0)
  assert reached and ratio == pytest.approx(2.0)
  slower = Curve([0, 100], [5.0, 4.0])  # Never reaches 3.0: compared at its own final loss.
  ratio, reached = compute_ratio(slower, scratch, target=3.0)
  assert not reached and ratio == pytest.approx(0.5)


def test_mean_ci_is_a_student_t_interval():
  mean, low, high = mean_ci([1.0, 2.0, 3.0])
  assert mean == 2.0 and low == pytest.approx(2.0 - 4.3027 / math.sqrt(3), abs=1e-3)
  assert high - mean == pytest.approx(mean - low)
  assert math.isnan(mean_ci([1.0])[1])


@pytest.mark.parametrize("method", budget.METHODS)
@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_every_plan_spends_the_budget_probes_included(method, kind):
  suite = budget.SpeedupSuite(budget_steps=1000, stage_layers=(1, 2, 3, 4), probe_steps=20)
  target = TARGET.replace(kind=kind)
  plan = budget.plan_method(method, suite, target, 32, 0.15, StagePoolTemplate())
  last_step = plan.phases[-1].flops_per_step
  assert abs(plan.total_flops - plan.budget_flops) <= last_step  # Within one target step.
  assert [p.layers for p in plan.phases][-1] == 4
  if method in budget.LAG_METHODS:
    assert plan.overhead_flops > 0
  else:
    assert plan.overhead_flops == 0
  bindings = budget.method_bindings(plan, seed=3)
  assert "Trainer.seed = 3" in bindings and "LanguageModelingData.seed = 3" in bindings


def test_adaptive_overhead_counts_the_losing_candidates_of_every_stage():
  suite = budget.SpeedupSuite(budget_steps=1000, stage_layers=(1, 2, 3, 4), probe_steps=20)
  plan = budget.plan_method("lag_gradual", suite, TARGET, 32, 0.15, StagePoolTemplate())
  # 1 -> 2: copy_top + zero_top (top = middle = bottom); 2 -> 3: middle = bottom; 3 -> 4: all.
  assert budget.pool_sizes((1, 2, 3, 4), StagePoolTemplate()) == [2, 3, 4]
  # The losers' probes, and every candidate's evaluations at 0, 10 and 20 (8 batches, a
  # forward pass each: a third of a training step's FLOPs).
  expected = sum(((size - 1) * 20 + size * 3 * 8 / 3) * phase.flops_per_step
                 for size, phase in zip([2, 3, 4], plan.phases[1:]))
  assert plan.overhead_flops == pytest.approx(expected)


def test_a_race_is_charged_its_whole_probe_budget():
  suite = budget.SpeedupSuite(budget_steps=1000, stage_layers=(1, 2, 3, 4), probe_steps=20,
                              race_probe_share=0.3)
  plan = budget.plan_method("race_gradual", suite, TARGET, 32, 0.15, StagePoolTemplate())
  assert plan.total_flops == pytest.approx(plan.budget_flops, rel=0.01)
  for phase in plan.phases[1:]:
    assert phase.overhead_flops == pytest.approx(0.3 * phase.steps * phase.flops_per_step)
  bindings = budget.method_bindings(plan, 0, suite=suite)
  assert "SelectorRule.rule = 'race'" in bindings
  assert "SelectorRule.probe_budget_share = 0.3" in bindings
  # A share too small for one look of every candidate is refused when the suite is planned.
  with pytest.raises(ValueError, match="one race look of 2 candidates"):
    budget.plan_method("race_gradual", dataclasses.replace(suite, race_probe_share=0.05),
                       TARGET, 32, 0.15, StagePoolTemplate())


def test_a_budget_shorter_than_the_probe_is_refused():
  suite = budget.SpeedupSuite(budget_steps=30, stage_layers=(1, 2, 3, 4), probe_steps=25)
  with pytest.raises(ValueError, match="shorter than the probe"):
    budget.plan_method("lag_gradual", suite, TARGET, 32, 0.15, StagePoolTemplate())


def test_loss_vs_flops_shows_where_methods_differ(tmp_path):
  """The small suite's shape: scratch evaluates every 100 steps (its steepest fall lies between
  its first two evals), a grown method's cheap base far more often. The FLOPs axis is log, the
  y-range starts after the first evals, and scratch's training loss fills its sparse stretch."""
  from benchmarks.speedup import plots
  step_flops = 1e10
  scratch_steps = np.arange(0, 700, 100)
  scratch = (scratch_steps * step_flops, [5.46, 2.57, 2.37, 2.15, 2.07, 1.98, 1.93])
  train_steps = np.arange(25, 625, 25)
  logged = {25: 4.36, 50: 2.95, 75: 2.65, 100: 2.54, 150: 2.38, 200: 2.23, 300: 2.10,
            400: 1.93, 500: 1.85, 600: 1.80}  # Training loss every 25 steps, interpolated.
  scratch_train = (train_steps * step_flops, np.interp(train_steps, list(logged),
                                                       list(logged.values())))
  # The grown method: a base at 1/8 of the cost per step evaluated every 25 steps, grown at
  # step 400 (5e11 FLOPs), evaluated every 25 steps after.
  base_steps, grown_steps = np.arange(0, 425, 25), np.arange(25, 225, 25)
  grown_flops = np.concatenate([base_steps * step_flops / 8,
                                base_steps[-1] * step_flops / 8 + grown_steps * step_flops])
  grown_loss = np.concatenate([[5.46], np.linspace(3.0, 2.45, len(base_steps) - 1),
                               np.linspace(2.4, 1.95, len(grown_steps))])
  curves = {name: (flops, np.asarray(loss), np.asarray(loss) - 0.02, np.asarray(loss) + 0.02)
            for name, (flops, loss) in (("scratch", scratch),
                                        ("grown", (grown_flops, grown_loss)))}
  figure = plots.loss_vs_flops_figure(curves, budget_flops=6e12,
                                      train_curves={"scratch": scratch_train})
  axes = figure.axes[0]
  assert axes.get_xscale() == "log"
  low, high = axes.get_ylim()
  assert 2.59 < high < 3.0 and low < 1.91  # From scratch's first eval after init, not 5.46.
  dotted = [line for line in axes.get_lines() if line.get_linestyle() == ":"]
  assert len(dotted) == 1
  shown = np.asarray(dotted[0].get_xdata())[np.isfinite(dotted[0].get_ydata())] * 1e12
  # Before scratch's first eval after init (step 100), and in no gap between its later evals
  # (a tenth of the log axis is wider than 200 -> 300 steps, 0.18 decades of 2.6).
  # Before scratch's first eval after init (step 100), and between its evals at steps 100 and
  # 200 (0.30 of 2.3 decades: wider than SPARSE_GAP), not between the later ones.
  assert shown.min() == 25 * step_flops and 100 * step_flops < shown.max() < 200 * step_flops
  plots.plot_loss_vs_flops(curves, str(tmp_path / "loss_vs_flops.png"), budget_flops=6e12,
                           train_curves={"scratch": scratch_train})
  assert (tmp_path / "loss_vs_flops.png").stat().st_size > 1000


def _run_suite(argv, capsys, launch=None):
  """(exit code, stdout, stderr) of `python -m benchmarks.speedup ARGV`, run in this process
  (each of its runs too, through `launch`: TensorFlow is imported once)."""
  capsys.readouterr()
  code = suite_command.main(list(argv), **({"launch": launch} if launch else {}))
  captured = capsys.readouterr()
  return code, captured.out, captured.err


def test_bad_suite_arguments_exit_2_with_one_line(tmp_path, capsys):
  code, _, err = _run_suite(["--suite", "nope", "--out", str(tmp_path)], capsys)
  assert code == 2
  errors = [line for line in err.splitlines() if line.startswith("error:")]
  assert len(errors) == 1 and "--suite='nope'" in errors[0]
  code, _, err = _run_suite(["--suite", "smoke", "--methods", "scratch,stacking", "--out",
                             str(tmp_path)], capsys)
  assert code == 2 and not os.listdir(tmp_path)
  assert err.strip().splitlines()[-1] == (
      "error: --methods: stacking not in this suite's methods (scratch, gradual_stacking, midas, "
      "stack_once, lag_gradual, race_gradual, init_loss_gradual, lag_once)")


def test_smoke_suite_runs_every_method_and_reports(tmp_path, data_dir, capsys, monkeypatch):
  """The whole smoke suite, every run of it in this process (`launch`): what is under test is
  the suite (plans, resume, report, export, refusals), not the child process."""
  from main_fixtures import in_process_launcher
  launch = in_process_launcher(monkeypatch)
  out = tmp_path / "suite"
  command = ["--suite", "smoke", "--model_kind", "decoder", "--seeds", "1", "--out", str(out),
             f"--gin_bindings=DATA_DIR = '{data_dir}'"]
  code, stdout, stderr = _run_suite(command, capsys, launch)
  assert code == 0, stdout[-2000:] + stderr[-3000:]
  last = stdout.strip().splitlines()[-1]
  assert re.match(r"speedup: method=gradual_stacking frontier_speedup=\S+ ci=\[nan,nan\] "
                  r"fixed_size_speedup=\S+ ci=\[nan,nan\] race_gradual_vs_fixed=", last)
  assert "best_of_many=" in last and "chosen after the runs" in last
  suite_dir = out / "decoder"
  report = (suite_dir / "report" / "report.md").read_text()
  for method in budget.METHODS:
    assert f"| {method} |" in report
    info = records.read_info(records.run_dir(str(suite_dir / method), 0))
    assert info.finished and info.wall_seconds > 0
  assert (suite_dir / "report" / "loss_vs_flops.png").stat().st_size > 1000
  assert (suite_dir / "report" / "frontier.png").stat().st_size > 1000
  for name in ("frontier_L1_s99", "frontier_L2_s128"):  # The smoke suite's two-run frontier.
    assert records.read_info(
        records.run_dir(str(suite_dir / "frontier" / name), 0)).finished
  assert "| gradual_stacking |" in report and "any-size (frontier) speedup" in report
  summary = json.loads((suite_dir / "report" / "summary.json").read_text())
  # Each run spent the budget (its last eval is at its total FLOPs, probes included).
  from benchmarks.speedup.runs import read_suite
  runs = read_suite(str(suite_dir))
  for method, by_seed in runs.items():
    run = by_seed[0]
    if method == "race_gradual":  # Charged its whole probe budget; it spends at most that.
      planned = records.read_info(records.run_dir(str(suite_dir / method), 0)).plan
      assert (run.budget_flops - planned.overhead_flops <= run.total_flops
              <= run.budget_flops * 1.001)
    else:
      assert run.total_flops == pytest.approx(run.budget_flops, rel=0.03), method
    # The training loss (every loop) is read too, on the same FLOPs axis, denser than evals.
    assert len(run.train_curve.flops) > len(run.curve.flops), method
    assert run.train_curve.total_flops == pytest.approx(run.total_flops, rel=0.03), method
  assert summary["headline"]["best_method"] != "scratch"
  # Rerunning resumes nothing and rewrites the same report.
  code, again, _ = _run_suite(command, capsys, launch)
  assert code == 0 and "already finished" in again
  assert np.isclose(float(re.search(r"flops_speedup=([\d.]+)", again).group(1)),
                    float(re.search(r"flops_speedup=([\d.]+)", last).group(1)))
  # A frontier dir shared with another suite holds that suite's budgets too: here a copy of a
  # finished run under a name off this grid, cut to its first half and with a far lower loss.
  # Neither the report nor the export reads it (were it read, the any-size frontier would reach
  # every method's loss at half the FLOPs, and the last line would change).
  other = records.run_dir(str(suite_dir / "frontier" / "frontier_L1_s50"), 0)
  original = records.run_dir(str(suite_dir / "frontier" / "frontier_L1_s99"), 0)
  shutil.copytree(original, other)
  records.write_info(other, dataclasses.replace(records.read_info(original),
                                                      method="frontier_L1_s50"))
  with open(store.metrics_path(other)) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  half = max(row["step"] for row in rows) // 2
  with open(store.metrics_path(other), "w") as f:
    for row in rows:
      if row["step"] <= half:
        f.write(json.dumps(dict(row, eval_loss=0.01) if "eval_loss" in row else row) + "\n")
  # The committed records stand in for the run dirs: a suite into a new --out with --results
  # runs nothing again and reports the same numbers.
  results = tmp_path / "results"
  code, exported, _ = _run_suite(command + ["--report_only", f"--results={results}"], capsys,
                                 launch)
  assert code == 0 and "exported 10 run records" in exported
  assert exported.strip().splitlines()[-1] == last
  elsewhere = [c if not c.startswith(str(out)) else str(tmp_path / "elsewhere")
               for c in command] + [f"--results={results}"]
  code, replayed, err = _run_suite(elsewhere, capsys, launch)
  assert code == 0, err[-2000:]
  assert replayed.count("finished in the committed results") == 10
  assert replayed.strip().splitlines()[-1] == last
  # A subset of the methods is the same runs: a run's bindings do not name the other methods.
  code, subset, err = _run_suite(command + ["--methods=scratch,gradual_stacking",
                                            "--frontier=none"], capsys, launch)
  assert code == 0, err[-2000:]
  assert subset.count(": already finished") == 2
  # Other settings into the same --out are refused before anything is touched.
  scratch_info = records.info_path(records.run_dir(str(suite_dir / "scratch"), 0))
  before = open(scratch_info).read()
  code, _, err = _run_suite(command + ["--gin_bindings=Trainer.eval_batches = 3"], capsys, launch)
  assert code == 2 and "other settings" in err
  assert open(scratch_info).read() == before


def _documented_suite_commands():
  """Every `python -m benchmarks.speedup ...` command in README.md, docs/*.md and the gin file
  headers."""
  texts = list(documents().values())
  gin_dir = os.path.join(REPO, "gin", "experiments")
  texts += [open(os.path.join(gin_dir, name)).read() for name in sorted(os.listdir(gin_dir))
            if name.endswith(".gin")]
  commands = set()
  for text in texts:
    for line in text.replace("\\\n", " ").splitlines():
      line = line.lstrip("#` ").strip().rstrip("`")
      if line.startswith("python -m benchmarks.speedup "):  # Not a bare mention.
        commands.add(line)
  return sorted(commands)


# The price docs/usage.md gives beside a suite's command (suite, model kind, seeds, methods),
# as --print_cost's (PFLOPs, hours) prints it.
DOCUMENTED_PRICES = {
    # 8 methods and gradual stacking under its tuned schedule (SpeedupSuite.method_schedules).
    ("small", "decoder", 5, 9): lambda pflops, hours: f"{pflops:.2f} PFLOPs, ~{hours:.1f} hours",
    ("small", "encoder", 3, 8): lambda pflops, hours: f"{pflops:.3f} PFLOPs, ~{hours:.1f} hours",
    ("small_long", "decoder", 2, 5): (
        lambda pflops, hours: f"{pflops:.2f} PFLOPs, {hours:.1f} hours"),
    ("accelerator", "encoder", 3, 8): lambda pflops, hours: (
        f"about {pflops / 1000:.0f} EFLOPs for the whole suite per model kind",
        f"{hours:.0f} hours at an"),
}


def test_documented_suite_commands_plan_without_errors(tmp_path, capsys):
  """Each documented suite command, run with --print_cost (it plans and prices, trains nothing:
  the real runs take up to an hour per model kind here; the binary's main in this process, so
  TensorFlow is imported once); where docs/usage.md prices a suite, the price is what
  --print_cost prints."""
  import shlex
  commands = _documented_suite_commands()
  assert len(commands) >= 3, commands
  usage = " ".join(read(USAGE).split())
  priced = set()
  for command in commands:
    option, module, *argv = shlex.split(command)[1:]
    assert (option, module) == ("-m", "benchmarks.speedup"), command
    argv = [a if not a.startswith("/tmp/") else str(tmp_path / "out") for a in argv]
    code = suite_command.main(argv + ["--print_cost"])
    printed = capsys.readouterr()
    assert code == 0, (command, printed.err[-2000:])
    total = re.search(r"^suite total: ([\d.]+) PFLOPs .* ([\d.]+) hours of training",
                      printed.out, re.M)
    assert total, command
    head = re.search(r"^suite (\S+): target (\S+),.* seeds \[([\d, ]+)\]", printed.out, re.M)
    methods = re.search(r"^suite total: .*\((\d+) methods x", printed.out, re.M).group(1)
    suite = (head.group(1), head.group(2), len(head.group(3).split(",")), int(methods))
    if suite in DOCUMENTED_PRICES:
      price = DOCUMENTED_PRICES[suite](float(total.group(1)), float(total.group(2)))
      for phrase in (price if isinstance(price, tuple) else (price,)):
        assert phrase in usage, (command, phrase)
      priced.add(suite)
  assert priced == set(DOCUMENTED_PRICES)
  assert not (tmp_path / "out").exists()  # Planning writes nothing.


def test_seeds_come_from_the_suite_then_the_next_integers():
  assert suite_command.choose_seeds((0, 1, 2), None) == [0, 1, 2]
  assert suite_command.choose_seeds((0, 1, 2), 2) == [0, 1]
  assert suite_command.choose_seeds((0,), 3) == [0, 1, 2]


# ---- the scratch frontier ----------------------------------------------------------------------

from benchmarks.speedup.frontier import (AT_MOST, EXACT, MORE_THAN, Bounded,  # noqa: E402
                                         envelope, envelope_flops, envelope_loss,
                                         flops_for_loss, frontier_flops, frontier_speedup,
                                         geometric_mean_ci)


def test_a_depths_flops_for_a_loss_interpolate_in_log_flops_and_bound_outside():
  points = [(1e12, 2.0), (4e12, 1.8), (16e12, 1.7)]
  # Halfway in loss between 1e12 and 4e12 is halfway in log FLOPs: 2e12.
  assert flops_for_loss(points, 1.9).value == pytest.approx(2e12)
  assert flops_for_loss(points, 1.9).kind == EXACT
  assert flops_for_loss(points, 2.1) == Bounded(1e12, AT_MOST)    # Reached at the smallest.
  assert flops_for_loss(points, 1.6) == Bounded(16e12, MORE_THAN)  # Never reached.


def test_the_frontier_is_the_envelope_of_every_point_and_says_when_it_is_a_bound():
  """Every evaluation of every scratch run counts: a longer run read before its end beats an
  annealed shorter one at its own FLOPs (what the committed decoder frontier shows), so the
  frontier is the envelope, interpolated in log FLOPs between its points."""
  annealed = [(1e12, 2.0), (4e12, 1.8)]          # Two annealed runs' final points.
  longer = [(1e12, 1.95), (2e12, 1.9), (8e12, 1.6)]  # A longer run's evaluations.
  assert envelope(annealed + longer) == [(1e12, 1.95), (2e12, 1.9), (4e12, 1.8), (8e12, 1.6)]
  # 1.85: halfway in loss between 2e12 (1.9) and 4e12 (1.8) is halfway in log FLOPs.
  assert envelope_flops(annealed + longer, 1.85).value == pytest.approx(8 ** 0.5 * 1e12)
  assert envelope_flops(annealed + longer, 1.85).kind == EXACT
  assert envelope_flops(annealed + longer, 1.8) == Bounded(4e12)           # A point: exact.
  assert envelope_flops(annealed + longer, 2.5) == Bounded(1e12, AT_MOST)  # Below the range.
  assert envelope_flops(annealed + longer, 1.5) == Bounded(8e12, MORE_THAN)
  # 1.92: the envelope needs 2 ** 0.6 x 1e12; the annealed final points alone would have said
  # 4 ** 0.4 x 1e12, more: a frontier above what scratch measured.
  assert envelope_flops(annealed + longer, 1.92).value == pytest.approx(2 ** 0.6 * 1e12)
  assert flops_for_loss(annealed, 1.92).value == pytest.approx(4 ** 0.4 * 1e12)
  # A zero-FLOPs point (the untrained model) is no point of the envelope.
  assert envelope([(0.0, 5.0)] + annealed) == annealed


def test_the_any_size_frontier_is_the_envelope_of_every_depth():
  shallow = [(1e12, 1.9), (2e12, 1.7)]       # Cheap and good at small budgets.
  deep = [(1e12, 2.2), (4e12, 1.8), (8e12, 1.6)]
  # Envelope: (1e12, 1.9), (2e12, 1.7), (8e12, 1.6); the deep 4e12 point is above it.
  assert frontier_flops({2: shallow, 4: deep}, 1.8).value == pytest.approx(2 ** 0.5 * 1e12)
  assert frontier_flops({2: shallow, 4: deep}, 1.65).value == pytest.approx(4e12)
  assert frontier_flops({2: shallow, 4: deep}, 1.5) == Bounded(8e12, MORE_THAN)
  # A method at 1.8 with 1e12 FLOPs: the frontier needs 1.41e12, a speedup of 1.41.
  assert frontier_speedup({2: shallow, 4: deep}, 1.8, 1e12).value == pytest.approx(2 ** 0.5)


def test_a_scratch_run_against_its_own_frontier_is_one():
  """By definition: the frontier reads a scratch run where the run itself reached its final
  loss, also when its curve is not monotone (the encoder's stalled one, whose last evaluation is
  above an earlier one, read 0.88 before)."""
  from benchmarks.speedup.frontier import Curve, own_flops
  for losses in ([5.0, 2.4, 2.1, 2.0], [5.0, 2.4, 2.05, 2.1, 2.08]):
    curve = Curve(np.arange(len(losses)) * 1e12, losses)
    points = list(zip(curve.flops, curve.losses))
    assert frontier_speedup({4: points}, curve.final_loss, own_flops(curve)) == Bounded(1.0)
  # The non-monotone one reached 2.08 between its evaluations at 1e12 (2.4) and 2e12 (2.05).
  assert 1e12 < own_flops(curve) < 2e12


def test_the_plotted_envelope_is_the_one_speedups_read():
  shallow = [(1e12, 1.9), (2e12, 1.7)]
  deep = [(1e12, 2.2), (4e12, 1.8), (8e12, 1.6)]
  grid = np.array([0.5e12, 1e12, 2 ** 0.5 * 1e12, 2e12, 4e12, 8e12, 16e12])
  values = envelope_loss(shallow + deep, grid)
  assert values[0] == np.inf                        # Before any point.
  assert list(values[1:4]) == pytest.approx([1.9, 1.8, 1.7])
  assert values[4] == pytest.approx(1.65)           # Between 2e12 (1.7) and 8e12 (1.6).
  assert values[5] == pytest.approx(1.6) and values[6] == pytest.approx(1.6)
  assert frontier_flops({2: shallow, 4: deep}, values[2]).value == pytest.approx(grid[2])
  assert list(values) == sorted(values, reverse=True)


def test_speedups_average_geometrically_and_bounds_stay_bounds():
  mean, low, high = geometric_mean_ci([Bounded(2.0), Bounded(0.5)])
  assert mean == Bounded(1.0) and low < 1.0 < high  # Arithmetic would say 1.25.
  mean, _, _ = geometric_mean_ci([Bounded(2.0), Bounded(3.0, MORE_THAN)])
  assert mean.kind == MORE_THAN and str(mean) == f"> {6 ** 0.5:.2f}"
  mean, _, _ = geometric_mean_ci([Bounded(2.0, AT_MOST), Bounded(3.0, MORE_THAN)])
  assert np.isnan(mean.value)  # Bounds both ways say nothing.


def test_frontier_plans_share_runs_by_depth_and_steps():
  suite = budget.SpeedupSuite(budget_steps=600, stage_layers=(1, 2, 3, 4),
                              frontier={2: (0.5, 1.0), 4: (0.5, 1.0, 2.0)})
  plans = budget.frontier_plans(suite, TARGET, 32, 0.15)
  names = [p.method for p in plans]
  # The target at the budget is the suite's `scratch` run, not a frontier run.
  assert "frontier_L4_s600" not in names and "frontier_L4_s300" in names
  assert "frontier_L4_s1200" in names and len(names) == 4
  for plan in plans:
    assert budget.is_scratch(plan.method)
    bindings = budget.method_bindings(plan, seed=1)
    assert "run_experiment.kind = 'train'" in bindings
    assert f"Trainer.train_steps = {plan.phases[0].steps}" in bindings
    assert f"WarmupDecaySchedule.total_steps = {plan.phases[0].steps}" in bindings  # Annealed.


def test_tuned_scratch_schedules_add_target_depth_frontier_runs_with_their_own_schedule():
  suite = budget.SpeedupSuite(budget_steps=600, stage_layers=(1, 2, 3, 4),
                              frontier={4: (0.5,)},
                              scratch_schedules={"decoder": {"wsd_2e-3": (0.5, 1.0)}})
  decoder = TARGET.replace(kind="decoder")
  plans = {p.method: p for p in budget.frontier_plans(suite, decoder, 32, None)}
  # The 1x run of a tuned schedule is a frontier run: the suite's `scratch` keeps the shared one.
  assert set(plans) == {"frontier_L4_s300", "frontier_L4_s300_wsd_2e-3",
                        "frontier_L4_s600_wsd_2e-3"}
  assert budget.schedule_of("frontier_L4_s600_wsd_2e-3") == "wsd_2e-3"
  assert budget.schedule_of("frontier_L4_s300") is None
  tuned = budget.method_bindings(plans["frontier_L4_s600_wsd_2e-3"], seed=1,
                                 peak_learning_rate=1e-3)
  assert "WarmupDecaySchedule.peak_learning_rate = 0.002" in tuned  # The schedule's own peak.
  assert "WarmupDecaySchedule.decay = 'wsd'" in tuned
  assert "WarmupDecaySchedule.end_fraction = 0.0" in tuned
  assert "WarmupDecaySchedule.total_steps = 600" in tuned and "Trainer.seed = 1" in tuned
  shared = budget.method_bindings(plans["frontier_L4_s300"], seed=1, peak_learning_rate=1e-3)
  assert not any("decay" in b for b in shared)
  # Another kind has no tuned runs; a name it cannot read is refused.
  assert len(budget.frontier_plans(suite, TARGET, 32, 0.15)) == 1
  with pytest.raises(ValueError, match="scratch schedule 'cosine_2e-3'"):
    budget.SpeedupSuite(scratch_schedules={"decoder": {"cosine_2e-3": (1.0,)}})


def test_method_schedules_rerun_a_growth_method_under_each_schedule_at_its_budget():
  suite = budget.SpeedupSuite(budget_steps=600, stage_layers=(1, 2, 3, 4),
                              method_schedules={"decoder": {"gradual_stacking": ("wsd_1e-3",),
                                                            "race_gradual": ("lin10_4e-3",)}})
  decoder = TARGET.replace(kind="decoder")
  plans = budget.plans(suite, decoder, 32, None)
  tuned, shared = plans["gradual_stacking_wsd_1e-3"], plans["gradual_stacking"]
  # The same budget and stages: only the schedule differs.
  assert tuned.phases == shared.phases and tuned.method == "gradual_stacking_wsd_1e-3"
  assert budget.base_method(tuned.method) == "gradual_stacking"
  assert budget.schedule_of(tuned.method) == "wsd_1e-3"
  assert budget.base_method("frontier_L4_s600_wsd_2e-3") == "frontier_L4_s600_wsd_2e-3"
  # Its run is its method's experiment (what a reader of the run dir looks for).
  assert budget.experiment_of(tuned.method) == "gradual" and "run_experiment.kind = 'gradual'" in (
      budget.method_bindings(tuned, seed=0, suite=suite))
  assert [budget.experiment_of(m) for m in ("scratch", "frontier_L4_s600_wsd_2e-3", "lag_once",
                                            "midas")] == ["train", "train", "lag", "gradual"]
  bindings = budget.method_bindings(tuned, seed=2, peak_learning_rate=2e-3, suite=suite)
  base = budget.method_bindings(shared, seed=2, peak_learning_rate=2e-3, suite=suite)
  # Every stage under the schedule's shape and peak: the base's and each post-growth one.
  for binding in ("WarmupDecaySchedule.peak_learning_rate = 0.001",
                  "ProbeSchedule.peak_learning_rate = 0.001", "WarmupDecaySchedule.decay = 'wsd'",
                  "ProbeSchedule.decay = 'wsd'", "ProbeSchedule.end_fraction = 0.0"):
    assert binding in bindings
  assert set(bindings) - set(base) == {
      "WarmupDecaySchedule.peak_learning_rate = 0.001", "ProbeSchedule.peak_learning_rate = 0.001",
      "WarmupDecaySchedule.decay = 'wsd'", "WarmupDecaySchedule.end_fraction = 0.0",
      "ProbeSchedule.decay = 'wsd'", "ProbeSchedule.end_fraction = 0.0"}
  race = budget.method_bindings(plans["race_gradual_lin10_4e-3"], seed=0, suite=suite)
  assert "SelectorRule.rule = 'race'" in race and "ProbeSchedule.end_fraction = 0.1" in race
  # Another kind has none; scratch or a name it cannot read is refused.
  assert set(budget.plans(suite, TARGET, 32, 0.15)) == set(budget.METHODS)
  with pytest.raises(ValueError, match="'scratch' is not a growth method"):
    budget.SpeedupSuite(method_schedules={"decoder": {"scratch": ("wsd_2e-3",)}})
  with pytest.raises(ValueError, match="scratch schedule 'cos_2e-3'"):
    budget.SpeedupSuite(method_schedules={"decoder": {"midas": ("cos_2e-3",)}})


def test_a_seed_whose_frontier_is_only_its_scratch_run_adds_no_frontier_speedup():
  from benchmarks.speedup.frontier import Curve
  from benchmarks.speedup.report import method_stats
  from benchmarks.speedup.runs import MethodRun

  def run(method, seed, final_loss):
    return MethodRun(method=method, seed=seed, curve=Curve([0.0, 1e12], [5.0, final_loss]),
                     layers=4, train_curve=None, winners=[], overhead_flops=0.0,
                     total_flops=1e12, budget_flops=1e12, wall_seconds=1.0, finished=True)
  scratch = {0: run("scratch", 0, 2.0), 1: run("scratch", 1, 2.0)}
  grown = {0: run("gradual_stacking", 0, 1.8), 1: run("gradual_stacking", 1, 1.8)}
  # {seed: {depth: [each run's curve]}}; seed 1: the scratch run alone (no frontier runs yet).
  frontier = {0: {4: [[(0.5e12, 2.2)], [(1e12, 2.0)], [(2e12, 1.8)]], 1: [[(1e12, 1.7)]]},
              1: {4: [[(1e12, 2.0)]]}}
  stats = method_stats(grown, scratch, frontier, target_depth=4)
  assert stats["seeds"] == [0, 1] and len(stats["final"]) == 2
  # Seed 0 only: 2e12 FLOPs of the target for 1.8 over the method's 1e12.
  assert stats["fixed_size"] == ["2.00"] and stats["fixed_size_ci"][0] == "2.00"
  assert len(stats["any_size"]) == 1
