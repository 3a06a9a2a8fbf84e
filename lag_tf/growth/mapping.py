"""How one tree-rewrite serves weights and AdamW moments alike: roles and axis maps.

An operator is written once as `grow_tree(tree, role)` and applied to the weight tree and to the
moment trees. Where a weight is a copy of an old weight times a factor, the moments follow the
*gradient* (not the weight):

* If the grown model computes the small model's function and every new weight is a scaled copy
  of an old one, the grown model's gradient at the grown weights is, coordinate by coordinate,
  a scaled copy of the old gradient. We map the first moment with that gradient scale and the
  second moment with its square. These are exactly the moments the grown model would hold had it
  been trained along the image of the small model's trajectory; Adam's per-parameter step m/sqrt(v)
  of each copy then equals the original's. Fresh units get zero moments.
* Along an axis a unit was copied c times into (an "out" axis: columns of the layer producing it)
  with weight factor alpha, the gradient factor is 1/(alpha*c): the c copies feed the next layer
  through weights divided by c, so each receives 1/c of the gradient.
* Along an axis whose incoming units were copied (a "split" axis: rows of the layer consuming
  them, divided by c), the weight factor is 1/c and the gradient factor is 1: the inputs are
  unscaled copies.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Callable, Optional, Sequence

import numpy as np

from lag_tf.growth import noise as noise_lib
from lag_tf.growth import state as state_lib
from lag_tf.growth.state import ModelState, Tree
from lag_tf.models.config import TransformerConfig


class Role(enum.Enum):
  """Which tree an operator is rewriting."""

  WEIGHTS = "weights"
  FIRST_MOMENT = "first_moments"
  SECOND_MOMENT = "second_moments"
  MOMENT_AGE = "moment_ages"  # Counts, not values: never scaled; fresh units start at age 0.

  @property
  def is_weights(self) -> bool:
    return self is Role.WEIGHTS

  def factor(self, weight_factor, gradient_factor):
    """The multiplier this role applies where a weight is multiplied by `weight_factor` and
    its gradient by `gradient_factor`."""
    if self is Role.WEIGHTS:
      return weight_factor
    if self is Role.FIRST_MOMENT:
      return gradient_factor
    if self is Role.MOMENT_AGE:
      return np.ones_like(np.asarray(gradient_factor, dtype=np.float64))
    return np.square(gradient_factor)

  def fresh(self, path: str, shape, rng: Optional[np.random.Generator], init: str = "default",
            dtype=np.float32) -> np.ndarray:
    """A new leaf: Keras-style initialization ('default'), or 'zero', for weights; zero moments."""
    if self is not Role.WEIGHTS or init == "zero":
      return np.zeros(shape, dtype)
    return state_lib.init_leaf(path, shape, rng, dtype)


def map_state(state: ModelState, new_config: TransformerConfig,
              grow_tree: Callable[[Tree, Role], Tree]) -> ModelState:
  """Rewrites the weights and, if present, the moment and moment-age trees (weights first: only the weights
  pass draws from the rng, so the draws do not depend on whether moments are present)."""
  grown = {name: grow_tree(tree, Role(name)) for name, tree in state.trees().items()}
  return ModelState(new_config, grown["weights"], grown.get("first_moments"),
                    grown.get("second_moments"), state.optimizer_step, grown.get("moment_ages"))


@dataclasses.dataclass(frozen=True, eq=False)
class AxisMap:
  """How one width axis grows: new position j holds old unit `index[j]` (-1: a fresh unit)."""

  index: np.ndarray
  old_size: int

  @property
  def size(self) -> int:
    return len(self.index)

  @property
  def fresh(self) -> np.ndarray:
    return self.index < 0

  @property
  def safe_index(self) -> np.ndarray:
    return np.where(self.index >= 0, self.index, 0)

  @property
  def counts(self) -> np.ndarray:
    """Per new position: how many new positions copy its old unit (1 for fresh units)."""
    valid = self.index >= 0
    per_old = np.bincount(self.index[valid], minlength=self.old_size)
    return np.where(valid, per_old[self.safe_index], 1).astype(np.float64)

  @property
  def is_identity(self) -> bool:
    return self.size == self.old_size and bool(np.all(self.index == np.arange(self.old_size)))

  @classmethod
  def identity(cls, size: int) -> "AxisMap":
    return cls(np.arange(size), size)


@dataclasses.dataclass(frozen=True, eq=False)
class Along:
  """One axis of a tensor in an `expand` call: its map, 'copy' or 'split', and for 'copy' an
  optional per-position weight factor alpha (default 1)."""

  axis: AxisMap
  mode: str = "copy"
  alpha: Optional[np.ndarray] = None


def _broadcast(vector: np.ndarray, dim: int, ndim: int) -> np.ndarray:
  shape = [1] * ndim
  shape[dim] = len(vector)
  return vector.reshape(shape).astype(np.float32)


def expand(values: np.ndarray, axes: Sequence[Optional[Along]], role: Role, path: str,
           rng: Optional[np.random.Generator] = None, fresh_init: str = "default",
           noise_scale: float = 0.0) -> np.ndarray:
  """Grows one tensor along its axes (None: unchanged); always returns a new array.

  Positions on a fresh unit of any axis are initialized by `role.fresh(..., fresh_init)`. With
  `noise_scale` > 0, the weights get zero-sum noise along their split axis (see noise.py).
  """
  out, fresh_mask = values, None
  for dim, along in enumerate(axes):
    if along is None or (along.axis.is_identity and along.alpha is None):
      continue
    axis = along.axis
    out = np.take(out, axis.safe_index, axis=dim)  # A new array: safe to modify in place.
    counts = axis.counts
    if along.mode == "split":
      weight_factor, gradient_factor = 1.0 / counts, np.ones_like(counts)
    elif along.mode == "copy":
      alpha = np.ones_like(counts) if along.alpha is None else np.asarray(along.alpha, np.float64)
      weight_factor, gradient_factor = alpha, 1.0 / (alpha * counts)
    else:
      raise ValueError(f"expand: mode={along.mode!r}")
    factor = role.factor(weight_factor, gradient_factor)
    if not np.all(factor == 1.0):
      out *= _broadcast(factor, dim, out.ndim)
    if axis.fresh.any():
      mask = _broadcast(axis.fresh, dim, out.ndim).astype(bool)
      fresh_mask = mask if fresh_mask is None else (fresh_mask | mask)
  if out is values:
    out = np.array(values, copy=True)
  if fresh_mask is not None:
    fresh_mask = np.broadcast_to(fresh_mask, out.shape)
    count = int(fresh_mask.sum())
    out[fresh_mask] = role.fresh(path, (count,), rng, fresh_init, out.dtype)
  if role.is_weights and noise_scale > 0:
    for dim, along in enumerate(axes):
      if along is not None and along.mode == "split" and not along.axis.is_identity:
        noise_lib.add_zero_sum_noise(out, rng, noise_scale, along.axis.index, dim)
  return out


def unit_map(old_size: int, new_size: int, rng: Optional[np.random.Generator],
             how: str) -> AxisMap:
  """The first `old_size` positions keep their unit; the others are new units chosen by `how`:

  'random': replicas of randomly chosen old units (Net2Net's random mapping), as evenly as
    possible (each old unit at most once more than any other);
  'cycle': replicas of units 0, 1, 2, ... in turn (uniform when new_size is a multiple);
  'fresh': fresh units (-1).
  """
  extra = new_size - old_size
  if extra < 0:
    raise ValueError(f"unit_map: cannot shrink {old_size} -> {new_size}")
  if how == "fresh":
    new = np.full(extra, -1)
  elif how == "cycle":
    new = np.arange(old_size, new_size) % old_size
  elif how == "random":
    full, remainder = divmod(extra, old_size)
    new = np.concatenate([np.tile(np.arange(old_size), full),
                          np.sort(rng.choice(old_size, remainder, replace=False))])
  else:
    raise ValueError(f"unit_map: how={how!r}")
  return AxisMap(np.concatenate([np.arange(old_size), new]).astype(np.int64), old_size)


def head_axis(heads: AxisMap, key: AxisMap) -> AxisMap:
  """The map of the attention width (num_heads * key_dim) from a head map and a key-dim map."""
  per_head = np.where(heads.index[:, None] >= 0,
                      heads.index[:, None] * key.old_size + key.index[None, :], -1)
  return AxisMap(per_head.reshape(-1), heads.old_size * key.old_size)


def query_alpha(heads: AxisMap, key: AxisMap) -> Optional[np.ndarray]:
  """Per attention position, the factor on the query that keeps every attention score.

  Scores are q.k / sqrt(key_dim). When key dims are replicated (c copies of dim i) and key_dim
  grows from k to k', scaling q by sqrt(k'/k)/c restores each score exactly.
  """
  if key.is_identity:
    return None
  per_key = np.sqrt(key.size / key.old_size) / key.counts
  return np.tile(per_key, heads.size)


def width_config(config: TransformerConfig, d_model: int, num_heads: int, key_dim: int,
                 d_ff: int) -> TransformerConfig:
  """The config with these widths; head_dim is explicit only when d_model // heads differs."""
  implicit = d_model % num_heads == 0 and d_model // num_heads == key_dim
  return config.replace(d_model=d_model, num_heads=num_heads, d_ff=d_ff,
                        head_dim=None if implicit else key_dim)


def check_growth(name: str, what: str, old: int, new: Optional[int],
                 multiple: bool = False) -> int:
  """Validates one target width; returns it (the old width when None)."""
  if new is None:
    return old
  if not isinstance(new, int) or new < old:
    raise ValueError(f"{name}: {what}={new!r} cannot be reached from {old} (growth only)")
  if multiple and new % old:
    raise ValueError(f"{name}: {what}={new} must be a multiple of {old} for exact duplication")
  return new

