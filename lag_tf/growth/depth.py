"""Depth growth operators: more layers, each initialized from an old layer, at random, or at zero.

Every operator reduces to a `LayerPlan`: for each new layer, the old layer that initializes it
(None: a fresh, randomly initialized layer), whether it is *new* (not the original occurrence of
its old layer), and whether its residual-branch output projections (attention_output and
ffn_output, kernel and bias) are zero, which makes the block the identity. Embeddings, final
norm and head are kept. Layer indices in parameters follow Python's rules (-1 is the top layer).

Moments (policy 'map'): a copied layer takes its source's moments; fresh layers and zeroed
output projections take zero moments. Noise: `noise_scale` adds Gaussian noise (std relative to
each kernel's std) to the kernels of new copied layers; on zero-output layers only to the
kernels before the zeroed projections, which keeps those operators exactly function-preserving.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Sequence, Tuple

import numpy as np

from lag_tf.growth import noise as noise_lib
from lag_tf.growth import state as state_lib
from lag_tf.growth.mapping import Role, map_state
from lag_tf.growth.registry import growth_operator
from lag_tf.growth.state import ModelState, Tree
from lag_tf.models.config import TransformerConfig

POSITIONS = ("top", "bottom", "middle", "interleave")
INNER_INITS = ("random", "copy")


@dataclasses.dataclass(frozen=True)
class LayerPlan:
  sources: Tuple[Optional[int], ...]
  new: Tuple[bool, ...]
  zero_output: Tuple[bool, ...]

  @classmethod
  def of(cls, sources: Sequence[Optional[int]], new: Sequence[bool],
         zero_output: bool = False) -> "LayerPlan":
    return cls(tuple(sources), tuple(bool(n) for n in new),
               tuple(bool(n) and zero_output for n in new))


def _originals(sources: Sequence[Optional[int]]) -> List[bool]:
  """Marks old layers 0, 1, 2, ... in order of first appearance as originals; the rest are new."""
  expected, marks = 0, []
  for source in sources:
    marks.append(source is not None and source == expected)
    expected += marks[-1]
  return marks


def _layer_index(name: str, index, num_layers: int, what: str = "layer index") -> int:
  if not isinstance(index, (int, np.integer)) or isinstance(index, bool):
    raise ValueError(f"{name}: {what} {index!r} is not an integer")
  if not -num_layers <= index < num_layers:
    raise ValueError(f"{name}: {what} {index} out of range for a {num_layers}-layer model")
  return int(index) % num_layers


def _check_target(name: str, num_layers: int, target_layers) -> int:
  if not isinstance(target_layers, int) or target_layers <= num_layers:
    raise ValueError(f"{name}: target_layers={target_layers!r} must be an integer larger than "
                     f"num_layers={num_layers}")
  return target_layers - num_layers


def _spread(num_layers: int, target_layers: int) -> List[int]:
  """How many times each layer appears when `target_layers` are spread evenly over them."""
  return [(i + 1) * target_layers // num_layers - i * target_layers // num_layers
          for i in range(num_layers)]


def _insertion(name: str, num_layers: int, target_layers: int, position: str,
               fresh: bool) -> Tuple[List, List[bool]]:
  """New layers (copies, or fresh when `fresh`) added at `position`; returns (sources, new)."""
  extra = _check_target(name, num_layers, target_layers)
  if position not in POSITIONS:
    raise ValueError(f"{name}: position={position!r}, expected one of {POSITIONS}")
  if position == "interleave":
    sources, new = [], []
    for layer, count in enumerate(_spread(num_layers, target_layers)):
      sources += [layer] + [None if fresh else layer] * (count - 1)
      new += [False] + [True] * (count - 1)
    return sources, new
  if extra > num_layers and not fresh:
    raise ValueError(f"{name}: cannot copy {extra} layers of a {num_layers}-layer model at "
                     f"position {position!r} (at most {num_layers})")
  if fresh:
    block = [None] * extra
    insert_at = {"top": num_layers, "bottom": 0, "middle": num_layers // 2}[position]
  else:
    # Copies go right after the block they copy: the top, the bottom or the middle (MIDAS) block.
    start = {"top": num_layers - extra, "bottom": 0, "middle": (num_layers - extra) // 2}[position]
    block = list(range(start, start + extra))
    insert_at = start + extra
  old = list(range(num_layers))
  sources = old[:insert_at] + block + old[insert_at:]
  new = [False] * insert_at + [True] * extra + [False] * (num_layers - insert_at)
  return sources, new


# -- plans, one per operator (config-only; `target_config` uses them to validate pools) --------

def _map_plan(num_layers, sources, name="layer_map"):
  if not isinstance(sources, (list, tuple)) or not sources:
    raise ValueError(f"{name}: sources must be a non-empty list of layer indices or None")
  resolved = [None if s is None else _layer_index(name, s, num_layers) for s in sources]
  return LayerPlan.of(resolved, [not original for original in _originals(resolved)])


def _stack_plan(num_layers, target_layers):
  _check_target("stack_layers", num_layers, target_layers)
  sources = [i % num_layers for i in range(target_layers)]
  return LayerPlan.of(sources, [i >= num_layers for i in range(target_layers)])


def _duplicate_plan(num_layers, target_layers):
  return LayerPlan.of(*_insertion("duplicate_layers", num_layers, target_layers, "interleave",
                                  fresh=False))


def _copy_top_plan(num_layers, target_layers):
  return LayerPlan.of(*_insertion("copy_top_layers", num_layers, target_layers, "top",
                                  fresh=False))


def _copy_block_plan(num_layers, target_layers, start, stop, insert_at=None,
                     name="copy_block"):
  extra = _check_target(name, num_layers, target_layers)
  first = _layer_index(name, start, num_layers, "start")
  stop = num_layers if stop is None else stop
  if not isinstance(stop, int) or not -num_layers < stop <= num_layers or stop == 0:
    raise ValueError(f"{name}: stop {stop!r} out of range for a {num_layers}-layer model")
  end = stop % num_layers or num_layers
  if end <= first:
    raise ValueError(f"{name}: empty block [{start}, {stop}) of a {num_layers}-layer model")
  size = end - first
  if extra % size:
    raise ValueError(f"{name}: {extra} new layers are not a whole number of copies of the "
                     f"{size}-layer block [{first}, {end})")
  position = end if insert_at is None else insert_at
  if not isinstance(position, int) or not -num_layers <= position <= num_layers:
    raise ValueError(f"{name}: insert_at {insert_at!r} out of range for a {num_layers}-layer "
                     "model")
  position = position + num_layers if position < 0 else position
  old = list(range(num_layers))
  copies = list(range(first, end)) * (extra // size)
  sources = old[:position] + copies + old[position:]
  new = [False] * position + [True] * extra + [False] * (num_layers - position)
  return LayerPlan.of(sources, new)


def _copy_middle_plan(num_layers, target_layers, block_size=None):
  extra = _check_target("copy_middle_block", num_layers, target_layers)
  size = min(extra, num_layers) if block_size is None else block_size
  if not isinstance(size, int) or not 1 <= size <= num_layers:
    raise ValueError(f"copy_middle_block: block_size={block_size!r} must be in [1, "
                     f"{num_layers}]")
  start = (num_layers - size) // 2
  return _copy_block_plan(num_layers, target_layers, start, start + size,
                          name="copy_middle_block")


def _random_plan(num_layers, target_layers, position="top"):
  return LayerPlan.of(*_insertion("random_layers", num_layers, target_layers, position,
                                  fresh=True))


def _zero_output_plan(num_layers, target_layers, position="top", inner="random"):
  if inner not in INNER_INITS:
    raise ValueError(f"zero_output_layers: inner={inner!r}, expected one of {INNER_INITS}")
  sources, new = _insertion("zero_output_layers", num_layers, target_layers, position,
                            fresh=inner == "random")
  return LayerPlan.of(sources, new, zero_output=True)


def _target(plan_fn):
  def target_config(config: TransformerConfig, noise_scale: float = 0.0,
                    **params) -> TransformerConfig:
    del noise_scale
    return config.replace(num_layers=len(plan_fn(config.num_layers, **params).sources))
  return target_config


# -- applying a plan -------------------------------------------------------------------------

def _grow_block(block: Tree, source_is_fresh: bool, zero_output: bool, noise: bool,
                role: Role, config: TransformerConfig, rng, noise_scale: float) -> Tree:
  if source_is_fresh:
    grown = {key: role.fresh(key, shape, rng)
             for key, shape in state_lib.block_shapes(config).items()}
  else:
    grown = {key: np.array(value, copy=True) for key, value in block.items()}
  if zero_output:
    for layer in state_lib.RESIDUAL_OUTPUTS:
      grown[f"{layer}/kernel"][...] = 0
      grown[f"{layer}/bias"][...] = 0
  if noise and role.is_weights and noise_scale > 0:
    for layer in state_lib.BLOCK_KERNELS:
      if not (zero_output and layer in state_lib.RESIDUAL_OUTPUTS):
        noise_lib.add_relative_noise(grown[f"{layer}/kernel"], rng, noise_scale)
  return grown


def apply_plan(config: TransformerConfig, state: ModelState, rng: np.random.Generator,
               plan: LayerPlan, noise_scale: float = 0.0) -> Tuple[TransformerConfig, ModelState]:
  if state.config != config:
    raise ValueError("growth operator: config and state.config differ")
  new_config = config.replace(num_layers=len(plan.sources))

  def grow_tree(tree: Tree, role: Role) -> Tree:
    blocks = []
    for source, new, zero in zip(plan.sources, plan.new, plan.zero_output):
      old_block = None if source is None else tree["blocks"][source]
      blocks.append(_grow_block(old_block, source is None, zero, new and source is not None,
                                role, config, rng, noise_scale))
    grown = state_lib.tree_map(np.copy, {k: v for k, v in tree.items() if k != "blocks"})
    grown["blocks"] = blocks
    return {key: grown[key] for key in ("embeddings", "blocks", "final_norm", "head")}

  return new_config, map_state(state, new_config, grow_tree)


# -- the operators ---------------------------------------------------------------------------

@growth_operator("depth", function_preserving=False, target_config=_target(_map_plan))
def layer_map(config, state, rng, *, sources, noise_scale=0.0):
  """General depth map: new layer i is a copy of old layer `sources[i]`, or fresh when None.

  E.g. [0, 1, 0, 1] stacks, [0, 0, 1, 1] duplicates in place, [0, 1, None, None] adds two
  random layers on top. Old layers appearing in order are the originals; the rest count as new
  (they get the noise).
  """
  return apply_plan(config, state, rng, _map_plan(config.num_layers, sources), noise_scale)


@growth_operator("depth", function_preserving=False, target_config=_target(_stack_plan))
def stack_layers(config, state, rng, *, target_layers, noise_scale=0.0):
  """StackBERT (Gong et al., 2019) / G_stack (Du et al., 2024): tile the whole layer stack.

  New layer i copies old layer i mod L ([0, 1, 0, 1] for 2 -> 4); a target that is not a
  multiple of L ends with a partial copy of the bottom layers.
  """
  return apply_plan(config, state, rng, _stack_plan(config.num_layers, target_layers),
                    noise_scale)


@growth_operator("depth", function_preserving=False, target_config=_target(_duplicate_plan))
def duplicate_layers(config, state, rng, *, target_layers, noise_scale=0.0):
  """Duplicate every layer in place ([0, 0, 1, 1] for 2 -> 4; interpolation-style growth,
  cf. Chang et al. 2018, bert2BERT's depth step); uneven targets spread the copies evenly."""
  return apply_plan(config, state, rng, _duplicate_plan(config.num_layers, target_layers),
                    noise_scale)


@growth_operator("depth", function_preserving=False, target_config=_target(_copy_top_plan))
def copy_top_layers(config, state, rng, *, target_layers, noise_scale=0.0):
  """Gradual stacking (Reddi et al., 2023): copy the top k = target - L layers on top."""
  return apply_plan(config, state, rng, _copy_top_plan(config.num_layers, target_layers),
                    noise_scale)


@growth_operator("depth", function_preserving=False, target_config=_target(_copy_middle_plan))
def copy_middle_block(config, state, rng, *, target_layers, block_size=None, noise_scale=0.0):
  """MIDAS (Saunshi et al., 2024): repeat the middle block of `block_size` layers (default:
  min(target - L, L)) right after itself until the target depth is reached."""
  return apply_plan(config, state, rng,
                    _copy_middle_plan(config.num_layers, target_layers, block_size), noise_scale)


@growth_operator("depth", function_preserving=False, target_config=_target(_copy_block_plan))
def copy_block(config, state, rng, *, target_layers, start, stop, insert_at=None,
               noise_scale=0.0):
  """Copy any block [start, stop) of layers to any position (the step of adaptive gradual
  stacking, which picks the block per stage): the copies, repeated until the target depth, are
  inserted before old layer `insert_at` (0..L; None: right after the block)."""
  return apply_plan(config, state, rng,
                    _copy_block_plan(config.num_layers, target_layers, start, stop, insert_at),
                    noise_scale)


@growth_operator("depth", function_preserving=False, target_config=_target(_random_plan))
def random_layers(config, state, rng, *, target_layers, position="top", noise_scale=0.0):
  """Add randomly initialized layers (Keras' initialization) at `position`: 'top', 'bottom',
  'middle' or 'interleave' (one fresh layer after each old one). noise_scale has no effect."""
  return apply_plan(config, state, rng,
                    _random_plan(config.num_layers, target_layers, position), noise_scale)


@growth_operator("depth", function_preserving=True, target_config=_target(_zero_output_plan))
def zero_output_layers(config, state, rng, *, target_layers, position="top", inner="random",
                       noise_scale=0.0):
  """Function-preserving new layers (as in staged training, Shen et al., 2022): the new layers'
  residual output projections (attention_output and ffn_output kernel and bias) are zero, so
  each new block is the identity. Their other weights are random (`inner='random'`) or copies
  (`inner='copy'`: of the layers copy_top/MIDAS/duplicate would copy at that position)."""
  return apply_plan(config, state, rng,
                    _zero_output_plan(config.num_layers, target_layers, position, inner),
                    noise_scale)
