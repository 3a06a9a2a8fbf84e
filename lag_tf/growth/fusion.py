"""Deep Fusion (Mazzawi et al., 2023): two trained models of width d become one of width 2d.

The fused model runs both side by side: the residual stream is [x1, x2], every Dense is
block-diagonal (model 1's heads and neurons see only model 1's units), so num_heads and d_ff
double and key_dim is kept. The output averages the two models: the untied output kernel stacks
both kernels halved, the output bias is the mean, and with tied embeddings the LayerNorm before
the output halves its gamma and beta. LayerNorms normalize over the fused 2d units, which mixes
the two models' statistics: the fused model is not function-preserving (it is exactly so when
both models are the same model, which the tests use as a check of the wiring).

Moments ('map'): each model's path contributes half of the output, so gradients of block and
embedding weights are halved (m/2, v/4), except where the weights were halved for the average
(tied last LayerNorm, untied output kernel) whose gradients are unchanged; the output bias takes
the mean of the moments. Noise: Gaussian noise in the zero off-diagonal blocks of every fused
Dense kernel (std relative to the diagonal blocks), which couples the two models.
"""

from __future__ import annotations

import numpy as np

from lag_tf.growth.mapping import Role, width_config
from lag_tf.growth.registry import growth_operator
from lag_tf.growth.state import ModelState, Tree

_DENSE_KERNELS = ("query", "key", "value", "attention_output", "ffn_inner", "ffn_output")


def _fusion_target(config, noise_scale=0.0):
  del noise_scale
  return width_config(config, 2 * config.d_model, 2 * config.num_heads, config.key_dim,
                      2 * config.d_ff)


def _concat(a, b, role: Role, weight_factor=1.0, gradient_factor=0.5):
  factor = np.float32(role.factor(weight_factor, gradient_factor))
  return np.concatenate([a, b], axis=-1) * factor


def _block_diagonal(a, b, role: Role, rng, noise_scale: float):
  factor = np.float32(role.factor(1.0, 0.5))
  rows_a, cols_a = a.shape
  out = np.zeros((rows_a + b.shape[0], cols_a + b.shape[1]), a.dtype)
  out[:rows_a, :cols_a] = a * factor
  out[rows_a:, cols_a:] = b * factor
  if role.is_weights and noise_scale > 0:
    std = noise_scale * float(np.std(np.concatenate([a.ravel(), b.ravel()])))
    for rows, cols in ((slice(None, rows_a), slice(cols_a, None)),
                       (slice(rows_a, None), slice(None, cols_a))):
      shape = out[rows, cols].shape
      out[rows, cols] = rng.standard_normal(shape, dtype=np.float32) * np.float32(std)
  return out


def _fuse_trees(one: Tree, two: Tree, role: Role, config, rng, noise_scale) -> Tree:
  tied_last = 0.5 if config.tie_embeddings else 1.0

  def last_norm(a, b):  # The LayerNorm feeding a tied output averages the two models.
    return _concat(a, b, role, tied_last, 0.5 / tied_last)

  embeddings = {k: _concat(one["embeddings"][k], two["embeddings"][k], role)
                for k in one["embeddings"]}
  blocks = []
  for block_one, block_two in zip(one["blocks"], two["blocks"]):
    fused = {}
    for key, value in block_one.items():
      layer = key.split("/")[0]
      if key.endswith("/kernel") and layer in _DENSE_KERNELS:
        fused[key] = _block_diagonal(value, block_two[key], role, rng, noise_scale)
      else:
        fused[key] = _concat(value, block_two[key], role)
    blocks.append(fused)
  final = {k: (last_norm if config.kind == "decoder" else
               lambda a, b: _concat(a, b, role))(one["final_norm"][k], two["final_norm"][k])
           for k in one["final_norm"]}
  head = {}
  for key, value in one["head"].items():
    other = two["head"][key]
    if key == "output/bias":
      head[key] = (value + other) * np.float32(0.5)
    elif key == "output/kernel":
      head[key] = np.concatenate([value, other], axis=0) * np.float32(role.factor(0.5, 1.0))
    elif key == "transform/kernel":
      head[key] = _block_diagonal(value, other, role, rng, noise_scale)
    elif key.startswith("transform_norm/"):
      head[key] = last_norm(value, other)
    else:
      head[key] = _concat(value, other, role)
  return {"embeddings": embeddings, "blocks": blocks, "final_norm": final, "head": head}


@growth_operator("width", function_preserving=False, target_config=_fusion_target,
                 needs_second_model=True)
def deep_fusion(config, state, rng, *, other: ModelState, noise_scale=0.0):
  """Deep Fusion (Mazzawi et al., 2023): fuse `state` with a second trained model `other` of the
  same config into a model of width 2d, 2x heads and 2x d_ff (see the module docstring)."""
  if state.config != config:
    raise ValueError("deep_fusion: config and state.config differ")
  if other is None:
    raise ValueError("deep_fusion needs a second trained model (other / second_state)")
  if other.config != config:
    raise ValueError(f"deep_fusion: the second model's config {other.config} differs from "
                     f"{config}")
  if other.has_optimizer_state != state.has_optimizer_state:
    raise ValueError("deep_fusion: both models need optimizer moments, or neither")
  new_config = _fusion_target(config)
  trees_one, trees_two = state.trees(), other.trees()
  fused = {name: _fuse_trees(trees_one[name], trees_two[name], Role(name), config, rng,
                             noise_scale)
           for name in trees_one}
  step = state.optimizer_step
  if step is not None:
    step = max(step, other.optimizer_step)
  return new_config, ModelState(new_config, fused["weights"], fused.get("first_moments"),
                                fused.get("second_moments"), step, fused.get("moment_ages"))
