"""The scratch frontier in one picture: each depth's fully annealed runs (final eval loss against
training FLOPs, mean over seeds), the frontiers the speedups are read from (the lower envelope
of every evaluation of the target depth's scratch runs, and of every depth's: the best loss
scratch reached within the FLOPs; mean over seeds), and each method's final point (mean FLOPs
and loss over seeds, with the seeds' range). FLOPs on a log axis, the loss range set by the
points shown."""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Tuple

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


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
  figure = Figure(figsize=(7.2, 4.8), dpi=100)  # Agg, no pyplot (as lag_tf.analysis.plots).
  FigureCanvasAgg(figure)
  axes = figure.add_subplot(1, 1, 1)
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
  if os.path.dirname(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
  figure.tight_layout()
  figure.savefig(path, format="png")
  return path
