"""Test helpers for growth: tiny configs, non-trivial random states, logits and gradients.

Random states have LayerNorm gammas away from 1, betas and biases away from 0 and kernels of
std 0.2, so a preservation test cannot pass because some part of the model is inert. Keras
models are cached per config: building one costs far more than assigning weights.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from lag_tf.training import keras_io
from lag_tf.growth.state import ModelState, tree_items, tree_map
from lag_tf.models.config import TransformerConfig

TINY = dict(num_layers=2, d_model=32, num_heads=2, d_ff=64, vocab_size=64, max_len=16)
VARIANTS = [(kind, tie) for kind in ("encoder", "decoder") for tie in (True, False)]

_MODELS: Dict[TransformerConfig, object] = {}


def states_equal(a: ModelState, b: ModelState) -> bool:
  """Bitwise equality of config, weights, moments and step."""
  if a.config != b.config or a.optimizer_step != b.optimizer_step:
    return False
  mine, theirs = a.trees(), b.trees()
  if mine.keys() != theirs.keys():
    return False
  for name in mine:
    ours, other_leaves = dict(tree_items(mine[name])), dict(tree_items(theirs[name]))
    if ours.keys() != other_leaves.keys():
      return False
    for path, leaf in ours.items():
      theirs_leaf = other_leaves[path]
      if leaf.dtype != theirs_leaf.dtype or not np.array_equal(leaf, theirs_leaf):
        return False
  return True


def tiny_config(kind: str = "encoder", tie: bool = True, **changes) -> TransformerConfig:
  return TransformerConfig(kind=kind, tie_embeddings=tie, **dict(TINY, **changes))


def randomized_state(config: TransformerConfig, seed: int = 0,
                     with_moments: bool = False) -> ModelState:
  """A state with every parameter non-trivial (see the module docstring)."""
  rng = np.random.default_rng(seed)
  weights = ModelState.init(config, rng).weights
  for path, leaf in tree_items(weights):
    name = path.rsplit("/", 1)[-1]
    noise = rng.standard_normal(leaf.shape).astype(np.float32)
    if name == "gamma":
      leaf[...] = 1.0 + 0.3 * noise
    elif name in ("beta", "bias"):
      leaf[...] = 0.3 * noise
    else:
      leaf[...] = 0.2 * noise
  state = ModelState(config, weights)
  if with_moments:
    first = tree_map(lambda w: rng.standard_normal(w.shape).astype(np.float32), weights)
    second = tree_map(lambda w: rng.random(w.shape).astype(np.float32) + 0.1, weights)
    state = state.replace(first_moments=first, second_moments=second, optimizer_step=7)
  return state


def model_for(config: TransformerConfig):
  from lag_tf.models.transformer import build_transformer
  if config not in _MODELS:
    _MODELS[config] = build_transformer(config)
  return _MODELS[config]


def random_tokens(config: TransformerConfig, seed: int = 0, batch: int = 2) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return rng.integers(0, config.vocab_size, size=(batch, config.max_len)).astype(np.int32)


def logits(state: ModelState, tokens: np.ndarray) -> np.ndarray:
  model = model_for(state.config)
  keras_io.assign_state(state.without_optimizer_state(), model)
  return np.asarray(model(tokens))


def gradient_state(state: ModelState, tokens: np.ndarray,
                   projection: Optional[np.ndarray] = None) -> ModelState:
  """`state` with m = the gradient of sum(logits * projection) and v = its square."""
  import tensorflow as tf
  model = model_for(state.config)
  keras_io.assign_state(state.without_optimizer_state(), model)
  if projection is None:
    projection = np.random.default_rng(1).standard_normal(
        tokens.shape + (state.config.vocab_size,)).astype(np.float32)
  tree = model.weight_tree()
  paths, variables = zip(*tree_items(tree))
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(model(tokens) * projection)
  grads = dict(zip(paths, (np.asarray(tf.convert_to_tensor(g))
                          for g in tape.gradient(loss, list(variables)))))
  first = _unflatten(tree, grads)
  return state.replace(first_moments=first, second_moments=tree_map(np.square, first),
                       optimizer_step=1)


def _unflatten(like, values: Dict[str, np.ndarray], prefix: str = ""):
  if isinstance(like, dict):
    return {k: _unflatten(v, values, f"{prefix}{k}/") for k, v in like.items()}
  if isinstance(like, list):
    return [_unflatten(v, values, f"{prefix}{i}/") for i, v in enumerate(like)]
  return values[prefix[:-1]]
