"""Plots for studies and LAG runs. Each function draws one figure, writes one PNG, returns its path
(`new_figure` and `save_figure` serve other figure writers too, e.g. the comparison suite's).

Figures are built on matplotlib's Agg canvas directly (no pyplot), so nothing depends on a
display or on global pyplot state, and plotting from several threads or tests is safe. Probe
steps start at 0 (the grown model at initialization), so step axes are symlog: linear in [0, 1],
logarithmic beyond, which shows the init point and the long tail in one picture.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_FADED = dict(linewidth=1.0, alpha=0.55)
_HIGHLIGHT_COLORS = ("black", "tab:red", "tab:blue")


def new_figure(width: float = 6.4, height: float = 4.2):
  """(figure, its one axes) on an Agg canvas."""
  figure = Figure(figsize=(width, height), dpi=100)
  FigureCanvasAgg(figure)
  return figure, figure.add_subplot(1, 1, 1)


def save_figure(figure: Figure, path: str) -> str:
  """Writes `figure` to `path` as a PNG (its directory made); returns `path`."""
  directory = os.path.dirname(path)
  if directory:
    os.makedirs(directory, exist_ok=True)
  figure.tight_layout()
  figure.savefig(path, format="png")
  return path


def _step_axis(axes, label: str = "probe step (steps after growth; symlog)") -> None:
  axes.set_xscale("symlog", linthresh=1.0)
  axes.set_xlim(left=-0.1)  # Steps are >= 0: no empty negative half.
  axes.set_xlabel(label)
  axes.grid(True, which="both", alpha=0.3)


def plot_eval_curves(curves: Mapping[str, Tuple[Sequence[int], Sequence[float]]], path: str,
                     highlight: Sequence[str] = (), title: str = "Eval loss after growth",
                     marked_step: Optional[int] = None) -> str:
  """Every candidate's eval loss against probe step; `highlight` names are drawn bold, in order
  (e.g. the best final candidate, the one chosen at init); marked_step draws a vertical line
  (e.g. the smallest k that predicts well)."""
  figure, axes = new_figure()
  for name, (steps, losses) in sorted(curves.items()):
    if name not in highlight:
      axes.plot(steps, losses, label=name, **_FADED)
  for color, name in zip(_HIGHLIGHT_COLORS * len(highlight), highlight):
    if name in curves:
      steps, losses = curves[name]
      axes.plot(steps, losses, label=f"{name} *", color=color, linewidth=2.4)
  if marked_step is not None:
    axes.axvline(marked_step, color="gray", linestyle="--", label=f"k = {marked_step}")
  _step_axis(axes)
  axes.set_ylabel("eval loss")
  axes.set_title(title)
  axes.legend(fontsize="small", ncol=2)
  return save_figure(figure, path)


def plot_correlation(steps: Sequence[int], curves: Sequence, path: str,
                     target: Optional[float] = None, marked_step: Optional[int] = None,
                     title: str = "Rank correlation of loss(t) with final loss") -> str:
  """Correlation against probe step with the bootstrap band, for each `correlation.BootstrapCurve`
  (e.g. Spearman and Kendall); the target as a horizontal line, the smallest k as a vertical."""
  figure, axes = new_figure()
  steps = np.asarray(steps)
  for curve in curves:
    line, = axes.plot(steps, curve.estimate, marker="o", markersize=3,
                      label=curve.statistic.capitalize())
    band = np.isfinite(curve.low) & np.isfinite(curve.high)
    if band.any():
      axes.fill_between(steps, curve.low, curve.high, where=band, color=line.get_color(),
                        alpha=0.2, label=f"{curve.confidence:.0%} bootstrap CI")
  if target is not None:
    axes.axhline(target, color="gray", linestyle=":", label=f"target {target:g}")
  if marked_step is not None:
    axes.axvline(marked_step, color="gray", linestyle="--", label=f"k = {marked_step}")
  _step_axis(axes)
  axes.set_ylim(-1.05, 1.05)
  axes.set_ylabel("correlation with final loss")
  axes.set_title(title)
  axes.legend(fontsize="small", loc="lower right")
  return save_figure(figure, path)


def plot_regret_vs_compute(compute_fraction: Sequence[float], regret: Sequence[float],
                           path: str, steps: Optional[Sequence[int]] = None,
                           title: str = "Regret of choosing at t") -> str:
  """Regret (final loss of the candidate chosen at t minus the best) against the probe's share of
  the study's compute; x is symlog so choosing at init (fraction 0) is visible."""
  figure, axes = new_figure()
  fraction = np.asarray(compute_fraction, dtype=np.float64)
  axes.plot(fraction, regret, marker="o", markersize=4, drawstyle="steps-post")
  if steps is not None:
    for x, y, step in zip(fraction, regret, steps):
      if np.isfinite(y):
        axes.annotate(str(step), (x, y), textcoords="offset points", xytext=(2, 4),
                      fontsize="x-small", color="gray")
  positive = fraction[fraction > 0]
  # Linear up to the decade below the smallest probe, so 0 (init) and the first decade tick
  # sit a decade apart instead of on top of each other.
  decade = 10.0 ** np.floor(np.log10(positive.min())) if positive.size else 1e-3
  axes.set_xscale("symlog", linthresh=float(decade))
  axes.set_xlim(left=-0.1 * decade)
  axes.set_xlabel("probe compute / study compute (symlog; labels: probe step)")
  axes.set_ylabel("regret (eval loss)")
  axes.axhline(0.0, color="gray", linewidth=0.8)
  axes.grid(True, which="both", alpha=0.3)
  axes.set_title(title)
  return save_figure(figure, path)


def plot_stage_decision(stage: int, eval_losses: Mapping[str, Mapping[int, float]],
                        winner: Optional[str], path: str,
                        status: Optional[Mapping[str, str]] = None) -> str:
  """One LAG / gradual stage: each candidate's eval loss at every probe eval step, the committed
  winner bold with a star at its deciding eval; failed/eliminated candidates dashed."""
  figure, axes = new_figure()
  status = status or {}
  for name, losses in sorted(eval_losses.items()):
    steps = sorted(losses)
    values = [losses[s] for s in steps]
    if not steps:
      continue
    if name == winner:
      axes.plot(steps, values, color="black", linewidth=2.4, marker="o", label=f"{name} (winner)")
      axes.plot([steps[-1]], [values[-1]], marker="*", markersize=16, color="gold",
                markeredgecolor="black", linestyle="none")
    else:
      state = status.get(name, "ok")
      axes.plot(steps, values, marker=".", linestyle="-" if state == "ok" else "--",
                label=name if state == "ok" else f"{name} ({state})", **_FADED)
  _step_axis(axes)
  axes.set_ylabel("eval loss")
  axes.set_title(f"Stage {stage}: probe evals")
  axes.legend(fontsize="small", ncol=2)
  return save_figure(figure, path)
