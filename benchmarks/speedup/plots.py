"""The suite's figures, on matplotlib's Agg canvas (lag_tf.analysis.plots' helpers; no pyplot).

`loss_vs_flops_figure`: each method's eval loss against the training FLOPs it spent (mean over
seeds, the seeds' range shaded), its training loss where evals are sparse.

`plot_frontier`: the scratch frontier in one picture: each depth's fully annealed runs (final
eval loss against training FLOPs, mean over seeds), the frontiers the speedups are read from
(the lower envelope of every evaluation of the target depth's scratch runs, and of every
depth's: the best loss scratch reached within the FLOPs; mean over seeds), and each method's
final point (mean FLOPs and loss over seeds, with the seeds' range). FLOPs on a log axis, the
loss range set by the points shown.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lag_tf.analysis.plots import new_figure, save_figure


def mean_by_budget(points_by_seed: Sequence[Sequence[Tuple[float, float]]]
                   ) -> List[Tuple[float, float]]:
  """One depth's (FLOPs, final loss) points averaged over seeds per budget (a budget is the same
  FLOPs in every seed)."""
  by_flops: Dict[float, List[float]] = {}
  for points in points_by_seed:
    for flops, loss in points:
      by_flops.setdefault(round(flops, -6), []).append(loss)
  return sorted((flops, float(np.mean(losses))) for flops, losses in by_flops.items())


def plot_frontier(depths: Mapping[int, Sequence[Tuple[float, float]]],
                  target_depth: int,
                  methods: Mapping[str, Tuple[Sequence[float], Sequence[float]]],
                  path: str, title: str,
                  envelopes: Mapping[str, Tuple[np.ndarray, np.ndarray]] = None) -> str:
  """depths: {depth: [(FLOPs, mean final loss), ...]}; methods: {name: (FLOPs per seed, final
  loss per seed)}; envelopes: {label: (FLOPs grid, mean loss over seeds)}, the frontiers the
  speedups are read from."""
  figure, axes = new_figure(7.2, 4.8)
  shown = []
  for depth, points in sorted(depths.items()):
    flops, losses = zip(*points)
    style = dict(linewidth=2.2) if depth == target_depth else dict(linewidth=1.2, alpha=0.8)
    axes.plot(flops, losses, marker="o", markersize=4, label=f"scratch, {depth} layer{'s' if depth > 1 else ''}"
              + (" (the target)" if depth == target_depth else ""),
              **style)
    shown += losses
  for (label, (grid, values)), style in zip((envelopes or {}).items(), ("--", ":")):
    finite = np.isfinite(values)
    axes.plot(grid[finite], values[finite], color="black", linestyle=style, linewidth=1.0,
              label=label)
  markers = "sD^vP*Xh"
  for index, (name, (flops, losses)) in enumerate(methods.items()):
    x, y = float(np.mean(flops)), float(np.mean(losses))
    axes.errorbar([x], [y], yerr=[[y - min(losses)], [max(losses) - y]], fmt=markers[
        index % len(markers)], markersize=7, capsize=3, label=f"{name} ({len(losses)} seeds)")
    shown += list(losses)
  axes.set_xscale("log")
  low, high = min(shown), max(shown)
  axes.set_ylim(low - 0.05 * (high - low), high + 0.05 * (high - low))
  axes.set_xlabel("training FLOPs (every probe and decision evaluation charged; log)")
  axes.set_ylabel("final eval loss")
  axes.set_title(title, fontsize=10)
  axes.grid(True, which="both", alpha=0.3)
  axes.legend(fontsize=7, loc="upper right")
  return save_figure(figure, path)


def plot_loss_vs_flops(curves, path: str, title: str = "Eval loss against training compute",
                       budget_flops: Optional[float] = None, train_curves=None) -> str:
  """Writes `loss_vs_flops_figure(...)` to `path`."""
  return save_figure(loss_vs_flops_figure(curves, title, budget_flops, train_curves), path)


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
  figure, axes = new_figure(7.2, 4.6)
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
