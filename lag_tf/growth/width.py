"""Width growth operators: wider FFNs, more heads, a wider residual stream (d_model).

All of them are one `WidthPlan`: an `AxisMap` for the residual width (d_model), the key dim,
and per layer the heads and the FFN neurons. Each tensor grows along its axes (see mapping.py):
the layer producing a unit copies its column ('copy'), the layer consuming it divides the
replicated rows by the number of copies ('split', Net2Net). Exactness of the d_model growth:

* Every residual unit is duplicated the same number of times r, so LayerNorm's mean and
  variance over the grown vector equal the old ones; gammas and betas are copied.
* Token and position embeddings copy their columns; the encoder's transform Dense splits its
  rows and copies its columns (its activation and the transform LayerNorm see copies).
* Tied embeddings cannot both duplicate inputs and split outputs, so the LayerNorm right before
  the tied output (final_norm for the decoder, transform_norm for the encoder) has its gamma and
  beta divided by r; the untied output kernel splits its rows instead.
* Attention: heads keep key_dim (the scale 1/sqrt(key_dim) is unchanged), so head_dim becomes
  explicit in the grown config when d_model // num_heads would differ. If key_dim grows too
  (target_head_dim), the query is scaled by sqrt(k'/k)/c so every score is unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import List

import numpy as np

from lag_tf.growth.mapping import (Along, AxisMap, Role, check_growth, expand, head_axis,
                                   map_state, query_alpha, unit_map, width_config)
from lag_tf.growth.registry import growth_operator
from lag_tf.growth.state import ModelState, Tree
from lag_tf.models.config import TransformerConfig


@dataclasses.dataclass(frozen=True, eq=False)
class WidthPlan:
  config: TransformerConfig  # The grown config.
  hidden: AxisMap
  key: AxisMap
  heads: List[AxisMap]
  ffn: List[AxisMap]
  fresh_outputs: str = "default"  # 'zero': fresh units' outgoing weights are zero.
  units_from_next_layer: bool = False  # bert2BERT AKI.


def _widths(name, config, target_d_model=None, target_heads=None, target_head_dim=None,
            target_d_ff=None, d_model_multiple=False, head_dim_multiple=True):
  d_model = check_growth(name, "target_d_model", config.d_model, target_d_model,
                         d_model_multiple)
  heads = check_growth(name, "target_heads", config.num_heads, target_heads)
  key_dim = check_growth(name, "target_head_dim", config.key_dim, target_head_dim,
                         head_dim_multiple)
  d_ff = check_growth(name, "target_d_ff", config.d_ff, target_d_ff)
  new = width_config(config, d_model, heads, key_dim, d_ff)
  if (d_model, heads, key_dim, d_ff) == (config.d_model, config.num_heads, config.key_dim,
                                         config.d_ff):
    raise ValueError(f"{name}: no target width is larger than the model's")
  return new


def _plan(config, new, rng, hidden_how, unit_how, **options) -> WidthPlan:
  layers = range(config.num_layers)
  return WidthPlan(
      new,
      hidden=unit_map(config.d_model, new.d_model, rng, hidden_how),
      key=unit_map(config.key_dim, new.key_dim, rng, "cycle"),
      heads=[unit_map(config.num_heads, new.num_heads, rng, unit_how) for _ in layers],
      ffn=[unit_map(config.d_ff, new.d_ff, rng, unit_how) for _ in layers],
      **options)


# -- growing the trees -----------------------------------------------------------------------

def _grow_block(block: Tree, plan: WidthPlan, layer: int, role: Role, rng, noise_scale) -> Tree:
  hidden = plan.hidden
  attention = head_axis(plan.heads[layer], plan.key)
  alpha = query_alpha(plan.heads[layer], plan.key)
  ffn = plan.ffn[layer]

  def grow(key, axes, fresh_init="default"):
    return expand(block[key], axes, role, key, rng, fresh_init, noise_scale)

  grown = {}
  for norm in ("attention_norm", "ffn_norm"):
    for param in ("gamma", "beta"):
      grown[f"{norm}/{param}"] = grow(f"{norm}/{param}", [Along(hidden)])
  for name in ("query", "key", "value"):
    out = Along(attention, "copy", alpha if name == "query" else None)
    grown[f"{name}/kernel"] = grow(f"{name}/kernel", [Along(hidden, "split"), out])
    grown[f"{name}/bias"] = grow(f"{name}/bias", [out])
  grown["attention_output/kernel"] = grow(
      "attention_output/kernel", [Along(attention, "split"), Along(hidden)], plan.fresh_outputs)
  grown["attention_output/bias"] = grow("attention_output/bias", [Along(hidden)])
  grown["ffn_inner/kernel"] = grow("ffn_inner/kernel", [Along(hidden, "split"), Along(ffn)])
  grown["ffn_inner/bias"] = grow("ffn_inner/bias", [Along(ffn)])
  grown["ffn_output/kernel"] = grow("ffn_output/kernel", [Along(ffn, "split"), Along(hidden)],
                                    plan.fresh_outputs)
  grown["ffn_output/bias"] = grow("ffn_output/bias", [Along(hidden)])
  return {key: grown[key] for key in block}


def _splice_next_layer(grown: Tree, upper: Tree, plan: WidthPlan, old: TransformerConfig):
  """bert2BERT AKI: the new heads and neurons of a layer take the next layer's weights."""
  new_attention = slice(old.num_heads * plan.config.key_dim, None)
  new_ffn = slice(old.d_ff, None)
  for name in ("query", "key", "value"):
    grown[f"{name}/kernel"][:, new_attention] = upper[f"{name}/kernel"][:, new_attention]
    grown[f"{name}/bias"][new_attention] = upper[f"{name}/bias"][new_attention]
  grown["attention_output/kernel"][new_attention] = upper["attention_output/kernel"][new_attention]
  grown["ffn_inner/kernel"][:, new_ffn] = upper["ffn_inner/kernel"][:, new_ffn]
  grown["ffn_inner/bias"][new_ffn] = upper["ffn_inner/bias"][new_ffn]
  grown["ffn_output/kernel"][new_ffn] = upper["ffn_output/kernel"][new_ffn]


def _grow_tree(tree: Tree, role: Role, old: TransformerConfig, plan: WidthPlan, rng,
               noise_scale: float) -> Tree:
  hidden = plan.hidden
  # The LayerNorm feeding a tied output: divided by the copy count (see the module docstring).
  last = Along(hidden, "copy", 1.0 / hidden.counts if old.tie_embeddings else None)

  def grow(values, path, axes):
    return expand(values, axes, role, path, rng, "default", noise_scale)

  embeddings = {k: grow(v, k, [None, Along(hidden)]) for k, v in tree["embeddings"].items()}
  blocks = []
  for layer, block in enumerate(tree["blocks"]):
    grown = _grow_block(block, plan, layer, role, rng, noise_scale)
    if plan.units_from_next_layer and layer + 1 < old.num_layers:
      upper = _grow_block(tree["blocks"][layer + 1], plan, layer, role, rng, noise_scale)
      _splice_next_layer(grown, upper, plan, old)
    blocks.append(grown)
  final_along = last if old.kind == "decoder" else Along(hidden)
  final_norm = {k: grow(v, k, [final_along]) for k, v in tree["final_norm"].items()}
  head = {"output/bias": np.array(tree["head"]["output/bias"], copy=True)}
  source = tree["head"]
  if old.kind == "encoder":
    head["transform/kernel"] = grow(source["transform/kernel"], "transform/kernel",
                                    [Along(hidden, "split"), Along(hidden)])
    head["transform/bias"] = grow(source["transform/bias"], "transform/bias", [Along(hidden)])
    for param in ("gamma", "beta"):
      key = f"transform_norm/{param}"
      head[key] = grow(source[key], key, [last])
  if not old.tie_embeddings:
    head["output/kernel"] = grow(source["output/kernel"], "output/kernel",
                                 [Along(hidden, "split"), None])
  head = {key: head[key] for key in source}
  return {"embeddings": embeddings, "blocks": blocks, "final_norm": final_norm, "head": head}


def apply_width_plan(config: TransformerConfig, state: ModelState, rng, plan: WidthPlan,
                     noise_scale: float = 0.0):
  if state.config != config:
    raise ValueError("growth operator: config and state.config differ")
  grown = map_state(state, plan.config,
                    lambda tree, role: _grow_tree(tree, role, config, plan, rng, noise_scale))
  return plan.config, grown


# -- the operators ---------------------------------------------------------------------------

def _split_ffn_target(config, target_d_ff, noise_scale=0.0):
  return _widths("split_ffn", config, target_d_ff=target_d_ff)


def _split_heads_target(config, target_heads, noise_scale=0.0):
  return _widths("split_heads", config, target_heads=target_heads)


def _widen_target(config, target_d_model, target_heads=None, target_head_dim=None,
                  target_d_ff=None, noise_scale=0.0):
  return _widths("widen_d_model", config, target_d_model, target_heads, target_head_dim,
                 target_d_ff, d_model_multiple=True)


def _aki_target(config, target_d_model=None, target_heads=None, target_d_ff=None,
                noise_scale=0.0):
  return _widths("bert2bert_aki", config, target_d_model, target_heads, None, target_d_ff)


def _zero_pad_target(config, target_heads=None, target_d_ff=None, noise_scale=0.0):
  return _widths("zero_pad", config, target_heads=target_heads, target_d_ff=target_d_ff)


def _random_pad_target(config, target_d_model=None, target_heads=None, target_d_ff=None,
                       noise_scale=0.0):
  return _widths("random_pad", config, target_d_model, target_heads, None, target_d_ff)


@growth_operator("width", function_preserving=True, target_config=_split_ffn_target)
def split_ffn(config, state, rng, *, target_d_ff, noise_scale=0.0):
  """Net2WiderNet (Chen et al., 2016) on the FFN: new neurons replicate randomly chosen old
  ones (inner columns copied, output rows divided by the replica count). Noise is zero-sum over
  replicas, so the operator stays exactly function-preserving."""
  new = _split_ffn_target(config, target_d_ff)
  return apply_width_plan(config, state, rng, _plan(config, new, rng, "cycle", "random"),
                          noise_scale)


@growth_operator("width", function_preserving=True, target_config=_split_heads_target)
def split_heads(config, state, rng, *, target_heads, noise_scale=0.0):
  """Net2Net on attention heads: new heads replicate randomly chosen heads (query/key/value
  columns copied, attention-output rows divided by the replica count); key_dim is kept."""
  new = _split_heads_target(config, target_heads)
  return apply_width_plan(config, state, rng, _plan(config, new, rng, "cycle", "random"),
                          noise_scale)


@growth_operator("width", function_preserving=True, target_config=_widen_target)
def widen_d_model(config, state, rng, *, target_d_model, target_heads=None,
                  target_head_dim=None, target_d_ff=None, noise_scale=0.0):
  """Function-preserving d_model growth (Net2Net / bert2BERT FPI with uniform duplication):
  every residual unit is duplicated target_d_model / d_model times so LayerNorm statistics are
  unchanged; optionally more heads (split), a larger key_dim (multiple) and a wider FFN."""
  new = _widen_target(config, target_d_model, target_heads, target_head_dim, target_d_ff)
  return apply_width_plan(config, state, rng, _plan(config, new, rng, "cycle", "random"),
                          noise_scale)


@growth_operator("width", function_preserving=False, target_config=_aki_target)
def bert2bert_aki(config, state, rng, *, target_d_model=None, target_heads=None,
                  target_d_ff=None, noise_scale=0.0):
  """bert2BERT's Advanced Knowledge Initialization (Chen et al., 2022): widen as FPI, but the
  new heads and FFN neurons of layer l take their weights (in and out) from layer l+1 (the top
  layer uses its own). Breaks the symmetry of copies; not function-preserving."""
  new = _aki_target(config, target_d_model, target_heads, target_d_ff)
  return apply_width_plan(config, state, rng,
                          _plan(config, new, rng, "cycle", "random", units_from_next_layer=True),
                          noise_scale)


@growth_operator("width", function_preserving=True, target_config=_zero_pad_target)
def zero_pad(config, state, rng, *, target_heads=None, target_d_ff=None, noise_scale=0.0):
  """Zero padding: new heads and FFN neurons get random incoming weights and zero outgoing
  weights (attention-output / ffn-output rows), so they add nothing until trained.
  (d_model cannot be zero-padded exactly: LayerNorm would see the zeros; see random_pad.)
  Nothing is a copy, so noise_scale has no effect."""
  new = _zero_pad_target(config, target_heads, target_d_ff)
  return apply_width_plan(config, state, rng,
                          _plan(config, new, rng, "fresh", "fresh", fresh_outputs="zero"),
                          noise_scale)


@growth_operator("width", function_preserving=False, target_config=_random_pad_target)
def random_pad(config, state, rng, *, target_d_model=None, target_heads=None, target_d_ff=None,
               noise_scale=0.0):
  """Random padding: every new weight (new residual units, heads, neurons) is freshly
  initialized as Keras would; old weights are kept. noise_scale has no effect."""
  new = _random_pad_target(config, target_d_model, target_heads, target_d_ff)
  return apply_width_plan(config, state, rng, _plan(config, new, rng, "fresh", "fresh"),
                          noise_scale)
