"""Symmetry-breaking noise for growth operators, seeded by the operator's numpy Generator.

Copies of a unit (a layer, an FFN neuron, a head) get identical gradients and stay identical
unless something breaks the tie. Two kinds of noise, both scaled relative to the tensor they
perturb (`noise_scale` is unit-free: the noise std is noise_scale * std(tensor)):

* `add_relative_noise`: plain Gaussian noise (changes the function).
* `add_zero_sum_noise`: on an axis whose units were *split* (weights of c replicas divided by c),
  noise whose sum over each group of replicas is zero. The split weights still sum to the
  original weight, so a function-preserving operator stays exactly function-preserving, while the
  replicas differ and receive different gradients from the first step on.
"""

from __future__ import annotations

import numpy as np


def relative_std(values: np.ndarray, noise_scale: float) -> float:
  return float(noise_scale) * float(np.std(values))


def add_relative_noise(values: np.ndarray, rng: np.random.Generator,
                       noise_scale: float) -> np.ndarray:
  """values + N(0, (noise_scale * std(values))^2), in place when possible; returns the result."""
  if noise_scale <= 0:
    return values
  std = relative_std(values, noise_scale)
  noise = rng.standard_normal(values.shape, dtype=np.float32) * np.float32(std)
  values += noise.astype(values.dtype, copy=False)
  return values


def _ranks(index: np.ndarray) -> np.ndarray:
  """For each position, how many earlier positions share its group (0 for the first)."""
  order = np.argsort(index, kind="stable")
  sorted_index = index[order]
  starts = np.r_[0, np.flatnonzero(np.diff(sorted_index)) + 1]
  group_start = np.repeat(starts, np.diff(np.r_[starts, len(index)]))
  ranks = np.empty_like(order)
  ranks[order] = np.arange(len(index)) - group_start
  return ranks


def add_zero_sum_noise(values: np.ndarray, rng: np.random.Generator, noise_scale: float,
                       index: np.ndarray, axis: int) -> np.ndarray:
  """Adds noise along `axis` that sums to zero over each group of positions sharing an `index`.

  index: for each position along `axis`, the old unit it replicates (-1: a fresh unit, which gets
    no noise). Groups of one get no noise (the noise minus its own mean is zero).
  """
  if noise_scale <= 0:
    return values
  valid = index >= 0
  if len(np.unique(index[valid])) == int(valid.sum()):
    return values  # No unit has replicas: nothing to break (and no draws from the rng).
  std = relative_std(values, noise_scale)
  moved = np.moveaxis(values, axis, 0)  # A view: writing into it writes into `values`.
  noise = rng.standard_normal(moved.shape, dtype=np.float32) * np.float32(std)
  groups = np.where(valid, index, 0)
  num_groups = int(groups.max()) + 1 if len(groups) else 0
  sums = np.zeros((num_groups,) + moved.shape[1:], np.float32)
  counts = np.bincount(groups[valid], minlength=num_groups).astype(np.float32)
  ranks = _ranks(np.where(valid, index, -1))
  # Positions of one rank belong to distinct groups, so each += below has no repeated indices.
  for rank in range(int(ranks.max()) + 1 if len(ranks) else 0):
    positions = np.flatnonzero(valid & (ranks == rank))
    sums[groups[positions]] += noise[positions]
  means = sums / np.maximum(counts, 1.0).reshape((-1,) + (1,) * (moved.ndim - 1))
  noise -= means[groups]
  noise[~valid] = 0.0
  moved += noise.astype(values.dtype, copy=False)
  return values
