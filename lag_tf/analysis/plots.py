"""Plots for studies and LAG runs. Each function draws one figure, writes one PNG, returns its path.

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
from matplotlib.lines import Line2D

_FADED = dict(linewidth=1.0, alpha=0.55)
_HIGHLIGHT_COLORS = ("black", "tab:red", "tab:blue")


def _figure(width: float = 6.4, height: float = 4.2):
  figure = Figure(figsize=(width, height), dpi=100)
  FigureCanvasAgg(figure)
  return figure, figure.add_subplot(1, 1, 1)


def _save(figure: Figure, path: str) -> str:
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
  figure, axes = _figure()
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
  return _save(figure, path)


def plot_correlation(steps: Sequence[int], curves: Sequence, path: str,
                     target: Optional[float] = None, marked_step: Optional[int] = None,
                     title: str = "Rank correlation of loss(t) with final loss") -> str:
  """Correlation against probe step with the bootstrap band, for each `correlation.BootstrapCurve`
  (e.g. Spearman and Kendall); the target as a horizontal line, the smallest k as a vertical."""
  figure, axes = _figure()
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
  return _save(figure, path)


def plot_regret_vs_compute(compute_fraction: Sequence[float], regret: Sequence[float],
                           path: str, steps: Optional[Sequence[int]] = None,
                           title: str = "Regret of choosing at t") -> str:
  """Regret (final loss of the candidate chosen at t minus the best) against the probe's share of
  the study's compute; x is symlog so choosing at init (fraction 0) is visible."""
  figure, axes = _figure()
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
  return _save(figure, path)


def plot_stage_decision(stage: int, eval_losses: Mapping[str, Mapping[int, float]],
                        winner: Optional[str], path: str,
                        status: Optional[Mapping[str, str]] = None) -> str:
  """One LAG / gradual stage: each candidate's eval loss at every probe eval step, the committed
  winner bold with a star at its deciding eval; failed/eliminated candidates dashed."""
  figure, axes = _figure()
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
  return _save(figure, path)


def plot_loss_vs_flops(curves, path: str, title: str = "Eval loss against training compute",
                       budget_flops: Optional[float] = None, train_curves=None) -> str:
  """Writes `loss_vs_flops_figure(...)` to `path`."""
  return _save(loss_vs_flops_figure(curves, title, budget_flops, train_curves), path)


def loss_vs_flops_figure(curves: Mapping[str, Tuple[Sequence[float], Sequence[float],
                                                    Sequence[float], Sequence[float]]],
                         title: str = "Eval loss against training compute",
                         budget_flops: Optional[float] = None,
                         train_curves: Optional[Mapping[str, Tuple[Sequence[float],
                                                                   Sequence[float]]]] = None
                         ) -> Figure:
  """Per method: (flops, mean eval loss, band low, band high) over seeds at its evals (dots;
  the band is shaded); `budget_flops` draws the common budget as a vertical line.

  Where a method's evals are sparse (before its first drawn eval, or two evals further apart
  than SPARSE_GAP of the axis), a straight line would hide how its loss fell: there its mean
  training loss from `train_curves` ((flops, mean), logged every loop) is drawn dotted in the
  same color. The y-range is the methods' eval losses once each has evaluated after its
  initialization (the loss at initialization, ~ln(vocab), would squeeze where they differ into
  a thin band); FLOPs are on a log axis when they span more than LOG_SPAN (the small base
  models' early evals are then visible).
  """
  train_curves = train_curves or {}
  positive = np.concatenate([np.asarray(c[0], np.float64) for c in curves.values()])
  positive = positive[positive > 0]
  log_x = bool(positive.size) and positive.max() / positive.min() > LOG_SPAN
  axis = _AxisPosition(positive, log_x)
  figure, axes = _figure(7.2, 4.6)
  for name, (flops, mean, low, high) in curves.items():
    keep = _shown(flops, log_x)
    flops = np.asarray(flops, np.float64)[keep]
    line, = axes.plot(flops / 1e12, np.asarray(mean)[keep], label=name, linewidth=1.6,
                      marker="o", markersize=2.5)
    axes.fill_between(flops / 1e12, np.asarray(low)[keep], np.asarray(high)[keep],
                      color=line.get_color(), alpha=0.15, linewidth=0)
    if name in train_curves:
      train_flops, train_mean = (np.asarray(v, np.float64) for v in train_curves[name])
      sparse = _shown(train_flops, log_x) & axis.in_sparse_stretch(train_flops, flops)
      axes.plot(train_flops / 1e12, np.where(sparse, train_mean, np.nan),
                color=line.get_color(), linestyle=":", linewidth=1.2)
  if budget_flops:
    axes.axvline(budget_flops / 1e12, color="gray", linestyle="--", label="budget")
  top, bottom = _loss_range(curves)
  if np.isfinite(top) and np.isfinite(bottom) and top > bottom:
    margin = 0.05 * (top - bottom)
    axes.set_ylim(bottom - margin, top + margin)
  if log_x:
    axes.set_xscale("log")
  axes.set_xlabel("cumulative training TFLOPs (probes of losing candidates included)"
                  + ("; log scale" if log_x else ""))
  axes.set_ylabel("loss")
  axes.set_title(title)
  axes.grid(True, which="both", alpha=0.3)
  handles, labels = axes.get_legend_handles_labels()
  handles += [Line2D([], [], color="black", marker="o", markersize=2.5, linewidth=1.6),
              Line2D([], [], color="black", linestyle=":", linewidth=1.2)]
  labels += ["eval loss (dots: evals)", "training loss, where evals are sparse"]
  axes.legend(handles, labels, fontsize="small", ncol=2)
  return figure


def _loss_range(curves) -> Tuple[float, float]:
  """(highest, lowest) eval loss once every method has evaluated after its initialization:
  from the latest first positive-FLOPs eval of any method on."""
  firsts = [np.min(flops[flops > 0]) for flops in (np.asarray(c[0], np.float64)
                                                   for c in curves.values()) if np.any(flops > 0)]
  start = max(firsts, default=0.0)
  highest, lowest = [], []
  for flops, _, low, high in curves.values():
    after = np.asarray(flops, np.float64) >= start
    highest += list(np.asarray(high, np.float64)[after])
    lowest += list(np.asarray(low, np.float64))
  return np.nanmax(highest or [np.nan]), np.nanmin(lowest or [np.nan])


LOG_SPAN = 30.0  # Max over min positive FLOPs above which the FLOPs axis is logarithmic.
SPARSE_GAP = 0.08  # Share of the FLOPs axis between two evals above which they are sparse.


def _shown(flops: Sequence[float], log_x: bool) -> np.ndarray:
  """Which points a log axis can draw (all on a linear one)."""
  flops = np.asarray(flops, np.float64)
  return flops > 0 if log_x else np.ones(flops.shape, bool)


class _AxisPosition:
  """Where FLOPs sit on the plot's x-axis, as a share of its width."""

  def __init__(self, positive_flops: np.ndarray, log_x: bool):
    self.log_x = log_x
    low, high = (positive_flops.min(), positive_flops.max()) if positive_flops.size else (1, 1)
    self.left = self._coordinate(low) if log_x else 0.0  # A linear axis starts at 0 FLOPs.
    self.right = self._coordinate(high)

  def _coordinate(self, flops):
    flops = np.asarray(flops, np.float64)
    if not self.log_x:
      return flops
    with np.errstate(divide="ignore"):
      return np.log10(flops)

  def share(self, flops) -> np.ndarray:
    return (self._coordinate(flops) - self.left) / max(self.right - self.left, 1e-300)

  def in_sparse_stretch(self, flops: np.ndarray, eval_flops: np.ndarray) -> np.ndarray:
    """Which `flops` lie before the first eval or between two evals SPARSE_GAP apart."""
    # Evals as edges, -inf first: a point before the first eval lies in an infinite gap.
    edges = np.concatenate([[-np.inf], self.share(eval_flops)])
    previous = np.searchsorted(edges, self.share(flops), side="right") - 1
    following = np.minimum(previous + 1, len(edges) - 1)
    return edges[following] - edges[previous] > SPARSE_GAP
