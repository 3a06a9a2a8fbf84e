"""The comparison suite's report: does growth reach scratch's loss for less compute?

Writes <suite_dir>/report/report.md, loss_vs_flops.png, frontier.png and summary.json, and
returns the headline: the comparisons chosen before the runs (PREREGISTERED): the fixed
strategy of the growth literature (gradual stacking) against both scratch frontiers, and each
LAG rule against it (final eval loss, paired over seeds). Every figure comes from the runs' own
metrics and decision records (`runs`); the maths is in `frontier`, the plots in `plots`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict, List

import numpy as np

from benchmarks.speedup.budget import METHODS, schedule_of
from benchmarks.speedup.frontier import (Bounded, Curve, compute_ratio, envelope_loss,
                                         frontier_speedup, geometric_mean_ci, mean_ci,
                                         mean_curve, own_flops, paired_difference)
from benchmarks.speedup.plots import mean_by_budget, plot_frontier, plot_loss_vs_flops
from benchmarks.speedup.records import RunRecord
from benchmarks.speedup.runs import (EVERY_RUN, MethodRun, Scope, decision_overhead,
                                     read_frontier, read_suite)
from lag_tf import atomic_file
from lag_tf.models.flops import CONVENTION

FIXED = ("gradual_stacking", "midas", "stack_once")  # Strategies that never choose.
# Chosen before the runs (2026-12-03): the fixed strategy against both frontiers, and each LAG
# rule against that fixed strategy. Anything else in the report is exploratory.
PREREGISTERED_FIXED = "gradual_stacking"
PREREGISTERED_LAG = ("race_gradual", "lag_gradual")
EASY_TARGET_SHARE = 0.5  # The easier target: scratch's loss at this share of the budget.


def fmt_ci(mean: float, low: float, high: float, digits: int = 3, signed: bool = False) -> str:
  """`mean [low, high]` ("-" without a mean, the mean alone without an interval); `signed`
  prints a + on positive values (differences)."""
  if math.isnan(mean):
    return "-"
  form = f"{{:{'+' if signed else ''}.{digits}f}}"
  if math.isnan(low):
    return form.format(mean)
  return f"{form.format(mean)} [{form.format(low)}, {form.format(high)}]"


def method_stats(runs: Dict[int, MethodRun], scratch: Dict[int, MethodRun],
                 frontier: Dict[int, Dict[int, list]] = None, target_depth: int = 0) -> dict:
  """Per-seed measurements of one method against scratch on the same seeds, and their CIs.
  Only finished runs count: a partial curve has not spent the budget. With a frontier
  ({seed: {depth: [(FLOPs, final loss)]}}), also the speedups against the target depth's
  (fixed size) and against every depth's (any size), on the same seed's frontier."""
  frontier = frontier or {}
  seeds = sorted(s for s in runs if s in scratch and runs[s].finished and scratch[s].finished)
  final, ratio, easy, wall_ratio, reached, overhead, wall = [], [], [], [], 0, [], []
  fixed_size, any_size = [], []
  for seed in seeds:
    run, base = runs[seed], scratch[seed]
    final.append(run.curve.final_loss)
    by_depth = {depth: [p for curve in curves for p in curve]
                for depth, curves in frontier.get(seed, {}).items()}
    # A seed whose frontier is only its scratch run (its frontier runs not done yet) has too
    # few budgets to read a speedup from: it does not count.
    spent = own_flops(run.curve)  # Where it reached its final loss, as scratch is read.
    if len(frontier.get(seed, {}).get(target_depth, [])) >= 2:
      fixed_size.append(frontier_speedup({target_depth: by_depth[target_depth]},
                                         run.curve.final_loss, spent))
    if len(by_depth) > 1:
      any_size.append(frontier_speedup(by_depth, run.curve.final_loss, spent))
    value, hit = compute_ratio(run.curve, base.curve, base.curve.final_loss)
    ratio.append(value)
    reached += hit
    easy_target = base.curve.loss_at(EASY_TARGET_SHARE * base.total_flops)
    easy.append(compute_ratio(run.curve, base.curve, easy_target)[0])
    overhead.append(run.overhead_flops / run.budget_flops)
    wall.append(run.wall_seconds)
    # Wall time to the common loss, taking each run's wall time as proportional to the FLOPs it
    # spent: the FLOP ratio times scratch's wall time per FLOP over the method's.
    if run.wall_seconds > 0 and base.wall_seconds > 0:
      wall_ratio.append(value * (base.wall_seconds / base.total_flops)
                        / (run.wall_seconds / run.total_flops))
  return {"seeds": seeds, "final": final, "final_ci": mean_ci(final), "ratio": ratio,
          "ratio_ci": _geometric(ratio), "reached": reached, "easy_ci": _geometric(easy),
          "wall_ratio_ci": _geometric(wall_ratio),
          "fixed_size": [str(v) for v in fixed_size], "fixed_size_ci": _bounded(fixed_size),
          "any_size": [str(v) for v in any_size], "any_size_ci": _bounded(any_size),
          "overhead": float(np.mean(overhead or [0])),
          "wall": float(np.mean(wall or [0])),
          "winners": {seed: runs[seed].winners for seed in seeds}}


def _geometric(values) -> tuple:
  mean, low, high = geometric_mean_ci([Bounded(v) for v in values])
  return mean.value, low, high


def _bounded(values) -> tuple:
  """(geometric mean as text with its bound sign, low, high)."""
  mean, low, high = geometric_mean_ci(values)
  return (str(mean) if values else "-"), low, high


def build_speedup_report(suite_dir: str, title: str = "", frontier_dir: str = None,
                         results_dir: str = None, scope: Scope = EVERY_RUN) -> dict:
  """Writes the report; returns the headline dict (see module docstring). `results_dir`:
  committed run records (`runs.export_results`) of runs that have no dir here;
  `scope`: the suite's seeds and frontier grid, so that a frontier dir shared with another
  suite adds none of that suite's budgets or seeds."""
  runs = read_suite(suite_dir, results_dir, scope=scope)
  if "scratch" not in runs:
    raise ValueError(f"{suite_dir}: no scratch run yet; nothing to compare against")
  scratch = runs["scratch"]
  target_depth = next(iter(scratch.values())).layers
  frontier = read_frontier(frontier_dir or os.path.join(suite_dir, "frontier"), scratch,
                           results_dir, scope)
  order = [m for m in METHODS if m in runs] + sorted(set(runs) - set(METHODS))
  stats = {method: method_stats(runs[method], scratch, frontier, target_depth)
           for method in order}
  growth = [m for m in stats if m != "scratch" and stats[m]["seeds"]]
  best = max(growth, key=lambda m: stats[m]["ratio_ci"][0]) if growth else None
  headline = {"best_method": best, "seeds": stats["scratch"]["seeds"],
              "preregistered_fixed": PREREGISTERED_FIXED}
  if best:
    headline["flops_speedup"] = stats[best]["ratio_ci"]
  fixed_stats = stats.get(PREREGISTERED_FIXED)
  if fixed_stats and fixed_stats["seeds"]:
    headline["fixed_size_speedup"] = fixed_stats["fixed_size_ci"]
    headline["frontier_speedup"] = fixed_stats["any_size_ci"]
    for lag_method in PREREGISTERED_LAG:
      if lag_method in stats and stats[lag_method]["seeds"]:
        seeds = [s for s in stats[lag_method]["seeds"] if s in fixed_stats["seeds"]]
        headline[f"{lag_method}_vs_fixed"] = paired_difference(
            [runs[lag_method][s].curve.final_loss for s in seeds],
            [runs[PREREGISTERED_FIXED][s].curve.final_loss for s in seeds])
  report_dir = os.path.join(suite_dir, "report")
  os.makedirs(report_dir, exist_ok=True)
  _plot(runs, os.path.join(report_dir, "loss_vs_flops.png"), title)
  if frontier:
    _plot_frontier(frontier, target_depth, runs, os.path.join(report_dir, "frontier.png"),
                   title)
  atomic_file.write_text(os.path.join(report_dir, "report.md"),
                         _markdown(stats, runs, headline, title))
  atomic_file.write_text(os.path.join(report_dir, "summary.json"), json.dumps(
      {"headline": headline, "methods": stats}, indent=2, default=str))
  return headline


def _mean_over_seeds(curves):
  """(grid, mean, low, high) on the union of the curves' points: each seed's own evals, no
  resolution the runs did not log."""
  grid = np.unique(np.concatenate([curve.flops for curve in curves]))
  mean, low, high = mean_curve(curves, grid)
  keep = ~np.isnan(mean)
  return grid[keep], mean[keep], low[keep], high[keep]


def _plot(runs: Dict[str, Dict[int, MethodRun]], path: str, title: str) -> None:
  curves, train_curves = {}, {}  # Mean over the finished seeds, band = their min and max.
  for method, by_seed in runs.items():
    finished = [r for r in by_seed.values() if r.finished]
    if not finished:
      continue
    name = f"{method} ({len(finished)} seeds)"
    curves[name] = _mean_over_seeds([r.curve for r in finished])
    trained = [r.train_curve for r in finished if r.train_curve is not None]
    if trained:
      train_curves[name] = _mean_over_seeds(trained)[:2]
  budget = next(iter(runs["scratch"].values())).budget_flops
  plot_loss_vs_flops(curves, path, title=title or "Loss against training compute",
                     budget_flops=budget, train_curves=train_curves)


def _plot_frontier(frontier, target_depth: int, runs, path: str, title: str) -> None:
  depths = {}  # Each run's final point: the annealed runs' frontier, as plotted.
  for by_depth in frontier.values():
    for depth, curves in by_depth.items():
      depths.setdefault(depth, []).append([curve[-1] for curve in curves])
  methods = {}
  for method, by_seed in runs.items():
    finished = [r for r in by_seed.values() if r.finished]
    if finished and method != "scratch":
      methods[method] = ([r.total_flops for r in finished],
                         [r.curve.final_loss for r in finished])
  every = [f for by_depth in frontier.values() for curves in by_depth.values()
           for curve in curves for f, _ in curve if f > 0]
  grid = np.geomspace(min(every), max(every), 200)
  envelopes = {}
  for label, depths_of in (("fixed-size frontier (envelope of the target's runs)",
                            lambda by_depth: [by_depth.get(target_depth, [])]),
                           ("any-size frontier (envelope of every depth's runs)",
                            lambda by_depth: list(by_depth.values()))):
    per_seed = [envelope_loss([p for runs in depths_of(by_depth) for curve in runs
                               for p in curve], grid)
                for by_depth in frontier.values() if any(depths_of(by_depth))]
    if per_seed:
      envelopes[label] = (grid, np.mean(per_seed, axis=0))
  plot_frontier({d: mean_by_budget(p) for d, p in depths.items()}, target_depth, methods,
                path, title=f"Scratch frontier and methods: {title}" if title else
                "Scratch frontier and methods", envelopes=envelopes)


def _markdown(stats: Dict[str, dict], runs, headline: dict, title: str) -> str:
  scratch = runs["scratch"]
  budget = next(iter(scratch.values())).budget_flops
  best = headline.get("best_method")
  lines = [f"# Growth against scratch at equal compute{': ' + title if title else ''}",
           "",
           f"Budget: {budget / 1e12:.3f} TFLOPs per run (the target model from scratch), seeds "
           f"{headline['seeds']}. **Every FLOP a method spends is charged**: training "
           f"({CONVENTION}), every candidate's probe (the losers' at the "
           "growth point; the winner's probe is the start of its own run) and every evaluation "
           "a decision reads (a forward pass, a third of a training step's count). Periodic "
           "logging evaluations are charged to no method. Final losses: means over seeds with "
           "95% Student-t intervals; speedups: geometric means with t-intervals on their logs "
           "(seeds paired).",
           "",
           "Two questions. **Fixed size** (the growth literature's): the FLOPs scratch training "
           "of the *target depth* needs for the method's final loss, over the FLOPs at which "
           "the method reached it. Scratch's FLOPs are read from the lower envelope of every "
           "evaluation of every target-depth scratch run (each budget and schedule; a longer "
           "run's evaluations before its end count too), interpolated in log FLOPs between the "
           "envelope's points, so the frontier is monotone and a scratch run on it has speedup "
           "1.00. **Any size** (the sceptic's): the same against the envelope of *every "
           "depth's* scratch runs. `>` / `≤`: the loss lies outside the frontier's measured "
           "range, so the value is a bound, printed without an interval, never an "
           "extrapolation. "
           "Beside them, the older ratio against the single scratch run at the budget (at "
           "scratch's final loss; a method that never gets there is compared at its own final "
           "loss instead, which gives a value below 1).",
           "",
           f"Chosen before the runs: `{PREREGISTERED_FIXED}` against both frontiers, and "
           f"{', '.join(f'`{m}`' for m in PREREGISTERED_LAG)} against `{PREREGISTERED_FIXED}`"
           + (f". The largest single-run speedup (`{best}`) is a best of "
              f"{sum(1 for m in stats if m != 'scratch' and stats[m]['seeds'])}, chosen after "
              "the runs." if best else "."),
           "",
           "| method | final eval loss | fixed-size speedup | any-size (frontier) speedup | "
           "vs one scratch run | reached | deciding overhead | wall time / run |",
           "| --- | --- | --- | --- | --- | ---: | ---: | ---: |"]
  for method, s in stats.items():
    if not s["seeds"]:
      continue
    lines.append(
        f"| {method} | {fmt_ci(*s['final_ci'], digits=4)} | {_fmt_bounded(s['fixed_size_ci'])}"
        f" | {_fmt_bounded(s['any_size_ci'])} | {fmt_ci(*s['ratio_ci'], 2)} | "
        f"{s['reached']}/{len(s['seeds'])} | {s['overhead']:.1%} | {s['wall']:.0f} s |")
  if any(s["any_size"] for s in stats.values()):
    lines += ["", "![frontier](frontier.png)", "", "Per seed (fixed size; any size):", ""]
    for method, s in stats.items():
      if s["fixed_size"] or s["any_size"]:
        lines.append(f"- {method}: " + "; ".join(
            f"seed {seed}: {a}; {b}" for seed, a, b in zip(s["seeds"], s["fixed_size"],
                                                           s["any_size"])))
  lines += ["", "![eval loss against training FLOPs](loss_vs_flops.png)", ""]
  winners = [(m, s["winners"]) for m, s in stats.items() if any(s["winners"].values())]
  if winners:
    lines += ["## Committed growth decisions per seed", "",
              "| method | " + " | ".join(f"seed {s}" for s in headline["seeds"]) + " |",
              "| --- |" + " --- |" * len(headline["seeds"])]
    for method, by_seed in winners:
      cells = [" → ".join(by_seed.get(seed, [])) or "-" for seed in headline["seeds"]]
      lines.append(f"| {method} | " + " | ".join(cells) + " |")
    lines.append("")
  lines += ["## Headline", "", headline_line(headline), ""]
  unfinished = [f"{m}/seed-{s}" for m, by_seed in runs.items() for s, r in by_seed.items()
                if not r.finished]
  if unfinished:
    lines += [f"Unfinished runs (partial curves): {', '.join(unfinished)}", ""]
  return "\n".join(lines)


def _fmt_bounded(value) -> str:
  """A measured mean with its interval; a bound (`> 2.00`, `≤ 0.40`) alone: an interval on
  bounds would claim a precision the bound does not have."""
  text, low, high = value
  if text == "-" or math.isnan(low) or text[0] in "≤>":
    return text
  return f"{text} [{low:.2f}, {high:.2f}]"


def headline_line(headline: dict) -> str:
  """The suite's last line, the pre-registered comparisons: `speedup:
  method=gradual_stacking frontier_speedup=x ci=[lo,hi] fixed_size_speedup=y ci=[lo,hi]
  race_gradual_vs_fixed=d ci=[lo,hi] lag_gradual_vs_fixed=...`, then the best single-run ratio
  marked as chosen after the runs."""
  fixed = headline.get("preregistered_fixed", PREREGISTERED_FIXED)
  line = f"speedup: method={fixed}"
  for key in ("frontier_speedup", "fixed_size_speedup"):
    text, low, high = headline.get(key, ("n/a", math.nan, math.nan))
    if text[:1] in ("≤", ">"):  # A bound has no interval.
      line += f" {key}={text.replace(' ', '')} (a bound)"
    else:
      line += f" {key}={text.replace(' ', '')} ci=[{low:.3f},{high:.3f}]"
  for lag_method in PREREGISTERED_LAG:
    key = f"{lag_method}_vs_fixed"
    if key in headline:
      d, dl, dh = headline[key]
      line += f" {key}={d:+.4f} ci=[{dl:+.4f},{dh:+.4f}]"
  best = headline.get("best_method")
  if best:
    mean, low, high = headline["flops_speedup"]
    line += (f" best_of_many={best} flops_speedup={mean:.3f} ci=[{low:.3f},{high:.3f}] "
             "(vs one scratch run, chosen after the runs)")
  return line



def budget_trend_table(suites: List[tuple], methods: List[str]) -> str:
  """Markdown: how each method's standing changes with the budget. `suites`: (label, the
  `summary.json` dict a suite's report wrote) in budget order; one row per method and suite
  (final eval loss, fixed-size and any-size speedup, seeds), the methods in `methods` order."""
  lines = ["| method | budget | seeds | final eval loss | fixed-size speedup | "
           "any-size (frontier) speedup |", "| --- | --- | ---: | --- | --- | --- |"]
  for method in methods:
    for label, summary in suites:
      s = summary["methods"].get(method)
      if not s or not s["seeds"]:
        continue
      lines.append(f"| {method} | {label} | {len(s['seeds'])} | "
                   f"{fmt_ci(*s['final_ci'], digits=3)} | {_fmt_bounded(s['fixed_size_ci'])} | "
                   f"{_fmt_bounded(s['any_size_ci'])} |")
  return "\n".join(lines)


def frontier_table(records: List[RunRecord], seed: int) -> str:
  """Markdown: one row per depth (and per named scratch schedule of the target depth), one
  column per budget share, the final eval loss of each finished scratch run of `seed` (compact
  records, `records.read_records`); docs/results.md's frontier table is this text."""
  by_row: Dict[tuple, Dict[float, float]] = {}
  budget = None
  for record in records:
    run = record.run
    if run.seed != seed or not run.finished or not (
        run.method == "scratch" or run.method.startswith("frontier_")):
      continue
    if run.method == "scratch":
      budget = run.plan.budget_flops
    row = (record.layers, schedule_of(run.method) or "")
    by_row.setdefault(row, {})[record.total_flops] = record.final_loss
  if budget is None:
    raise ValueError(f"no finished scratch run of seed {seed}: no budget to share by")
  shares = sorted({round(f / budget, 2) for runs in by_row.values() for f in runs})
  lines = ["| depth | " + " | ".join(f"{s:g}x budget" for s in shares) + " |",
           "| --- |" + " ---: |" * len(shares)]
  for (depth, schedule), runs in sorted(by_row.items()):
    cells = {round(f / budget, 2): loss for f, loss in runs.items()}
    label = f"{depth} layer{'s' if depth > 1 else ''}" + (f", `{schedule}`" if schedule else "")
    lines.append(f"| {label} | " + " | ".join(
        f"{cells[s]:.3f}" if s in cells else "-" for s in shares) + " |")
  return "\n".join(lines)


def methods_table(records: List[RunRecord], seed: int) -> str:
  """Markdown: each finished method run of `seed` (compact records) with its final eval loss,
  its charged FLOPs as a share of the budget, what its decisions spent (the losers' probes and
  every evaluation read; a share of the budget), and its speedups against
  the same seed's fixed-size and any-size frontiers; docs/results.md's per-seed table is
  this text."""
  frontier: Dict[int, list] = {}
  methods = []
  for record in records:
    run = record.run
    if run.seed != seed or not run.finished:
      continue
    flops, loss = record.total_flops, record.final_loss
    if run.method == "scratch" or run.method.startswith("frontier_"):
      frontier.setdefault(record.layers, []).extend(record.curve)
    if not run.method.startswith("frontier_"):
      methods.append((record, flops, loss))
  target = max(frontier) if frontier else None
  lines = ["| method | final eval loss | FLOPs / budget | deciding | fixed-size speedup | "
           "any-size speedup | winners |", "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
  order = {m: i for i, m in enumerate(METHODS)}
  for record, flops, loss in sorted(methods, key=lambda m: order.get(m[0].run.method, 99)):
    run = record.run
    budget = run.plan.budget_flops
    reached = own_flops(Curve(*zip(*record.curve)))
    fixed = frontier_speedup({target: frontier[target]}, loss, reached) if target else None
    anysize = frontier_speedup(frontier, loss, reached) if len(frontier) > 1 else None
    lines.append(f"| {run.method} | {loss:.3f} | {flops / budget:.3f} | "
                 f"{decision_overhead(record) / budget:.1%} | "
                 f"{fixed if fixed else '-'} | {anysize if anysize else '-'} | "
                 f"{' → '.join(w or '?' for w in record.winners) or '-'} |")
  return "\n".join(lines)
