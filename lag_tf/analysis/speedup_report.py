"""The comparison suite's report: does growth reach scratch's loss for less compute?

Writes <suite_dir>/report/report.md, loss_vs_flops.png and summary.json, and returns the
headline (best growth method's FLOP speedup over scratch with its CI, and LAG's final loss
against the best fixed strategy's, paired over seeds). Every figure comes from the runs' own
metrics and decision records (`speedup_runs`); the maths is in `speedup`.
"""

from __future__ import annotations

import json
import math
import os
from typing import Dict

import numpy as np

from lag_tf import atomic_file
from lag_tf.analysis import plots
from lag_tf.analysis.speedup import compute_ratio, mean_ci, mean_curve, paired_difference
from lag_tf.analysis.speedup_runs import MethodRun, read_suite
from lag_tf.lag.budget import METHODS

FIXED = ("gradual_stacking", "midas", "stack_once")  # Strategies that never choose.
EASY_TARGET_SHARE = 0.5  # The easier target: scratch's loss at this share of the budget.


def _fmt_ci(mean: float, low: float, high: float, digits: int = 3) -> str:
  if math.isnan(mean):
    return "-"
  if math.isnan(low):
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def method_stats(runs: Dict[int, MethodRun], scratch: Dict[int, MethodRun]) -> dict:
  """Per-seed measurements of one method against scratch on the same seeds, and their CIs.
  Only finished runs count: a partial curve has not spent the budget."""
  seeds = sorted(s for s in runs if s in scratch and runs[s].finished and scratch[s].finished)
  final, ratio, easy, wall_ratio, reached, overhead, wall = [], [], [], [], 0, [], []
  for seed in seeds:
    run, base = runs[seed], scratch[seed]
    final.append(run.curve.final_loss)
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
          "ratio_ci": mean_ci(ratio), "reached": reached, "easy_ci": mean_ci(easy),
          "wall_ratio_ci": mean_ci(wall_ratio), "overhead": float(np.mean(overhead or [0])),
          "wall": float(np.mean(wall or [0])),
          "winners": {seed: runs[seed].winners for seed in seeds}}


def build_speedup_report(suite_dir: str, title: str = "") -> dict:
  """Writes the report; returns the headline dict (see module docstring)."""
  runs = read_suite(suite_dir)
  if "scratch" not in runs:
    raise ValueError(f"{suite_dir}: no scratch run yet; nothing to compare against")
  scratch = runs["scratch"]
  order = [m for m in METHODS if m in runs] + sorted(set(runs) - set(METHODS))
  stats = {method: method_stats(runs[method], scratch) for method in order}
  growth = [m for m in stats if m != "scratch" and stats[m]["seeds"]]
  best = max(growth, key=lambda m: stats[m]["ratio_ci"][0]) if growth else None
  headline = {"best_method": best, "seeds": stats["scratch"]["seeds"]}
  if best:
    headline["flops_speedup"] = stats[best]["ratio_ci"]
  fixed = [m for m in FIXED if m in stats and stats[m]["seeds"]]
  if "lag_gradual" in stats and fixed:
    best_fixed = min(fixed, key=lambda m: stats[m]["final_ci"][0])
    seeds = [s for s in stats["lag_gradual"]["seeds"] if s in stats[best_fixed]["seeds"]]
    headline["best_fixed"] = best_fixed
    headline["lag_vs_fixed"] = paired_difference(
        [runs["lag_gradual"][s].curve.final_loss for s in seeds],
        [runs[best_fixed][s].curve.final_loss for s in seeds])
  report_dir = os.path.join(suite_dir, "report")
  os.makedirs(report_dir, exist_ok=True)
  _plot(runs, os.path.join(report_dir, "loss_vs_flops.png"), title)
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
  plots.plot_loss_vs_flops(curves, path, title=title or "Loss against training compute",
                           budget_flops=budget, train_curves=train_curves)


def _markdown(stats: Dict[str, dict], runs, headline: dict, title: str) -> str:
  scratch = runs["scratch"]
  budget = next(iter(scratch.values())).budget_flops
  lines = [f"# Growth against scratch at equal training FLOPs{': ' + title if title else ''}",
           "",
           f"Budget: {budget / 1e12:.3f} training TFLOPs per run (the target model from "
           f"scratch), seeds {headline['seeds']}. Every growth method spends the same budget; "
           "a LAG method's budget **includes every candidate's probe** (losing candidates' "
           "probes are charged at the growth point; the winner's probe is the start of its "
           "own run). Means over seeds with 95% Student-t intervals (seeds paired).",
           "",
           "Speedup = scratch's FLOPs to reach a loss / the method's FLOPs to reach it, "
           "at scratch's final loss (a method that never gets there is compared at its own "
           "final loss instead, which gives a value below 1) and at an easier target "
           f"(scratch's loss at {EASY_TARGET_SHARE:.0%} of the budget). Wall-clock speedup: "
           "the same ratio in seconds, taking each run's wall time as proportional to the FLOPs "
           "it spent (runs include process start, tracing and evaluation).",
           "",
           "| method | final eval loss | speedup @ scratch final | reached | speedup @ easier "
           "target | wall-clock speedup | probe overhead | wall time / run |",
           "| --- | --- | --- | ---: | --- | --- | ---: | ---: |"]
  for method, s in stats.items():
    if not s["seeds"]:
      continue
    lines.append(
        f"| {method} | {_fmt_ci(*s['final_ci'], digits=4)} | {_fmt_ci(*s['ratio_ci'], 2)} | "
        f"{s['reached']}/{len(s['seeds'])} | {_fmt_ci(*s['easy_ci'], 2)} | "
        f"{_fmt_ci(*s['wall_ratio_ci'], 2)} | {s['overhead']:.1%} | {s['wall']:.0f} s |")
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


def headline_line(headline: dict) -> str:
  """The suite's last line: `speedup: method=... flops_speedup=x ci=[lo,hi] lag_vs_fixed=...`."""
  best = headline.get("best_method")
  if not best:
    return "speedup: method=none flops_speedup=nan ci=[nan,nan] lag_vs_fixed=nan"
  mean, low, high = headline["flops_speedup"]
  line = f"speedup: method={best} flops_speedup={mean:.3f} ci=[{low:.3f},{high:.3f}]"
  if "lag_vs_fixed" in headline:
    d, dl, dh = headline["lag_vs_fixed"]
    line += (f" lag_vs_fixed={d:+.4f} lag_vs_fixed_ci=[{dl:+.4f},{dh:+.4f}] "
             f"(lag_gradual minus {headline['best_fixed']}, final eval loss)")
  else:
    line += " lag_vs_fixed=n/a"
  return line

