"""lag_tf decoders <-> keras-hub backbones, where the architecture maps exactly.

What maps (checked against keras-hub 0.32.0's sources): keras-hub's GPT-2 and OPT backbones are
pre-LayerNorm decoders with learned absolute positions, biases everywhere, LayerNorm epsilon
1e-5, head size hidden_dim // num_heads, a final LayerNorm and a language-model head tied to the
token embedding, i.e. lag_tf's decoder with
  GPT2Backbone: activation='gelu_tanh' (GPT-2's tanh GELU), layer_norm_epsilon=1e-5;
  OPTBackbone:  activation='relu', layer_norm_epsilon=1e-5;
and num_heads * head_dim == d_model. What does not: lag_tf's encoder (pre-LN) against BERT,
RoBERTa, ALBERT, DistilBERT, ELECTRA (post-LN); decoders with rotary or ALiBi positions (Llama,
Mistral, Gemma, Qwen, GPT-NeoX, Falcon, Bloom); the exact (erf) GELU, which no such keras-hub
decoder uses. keras-hub's causal-LM heads have no output bias while lag_tf's has one (and an
untied lag_tf model has its own output kernel): these LM-head weights travel next to the preset
in `lm_head.npz` (`output_bias`, `output_kernel` if untied), so lag_tf's logits are
`backbone_logits + output_bias`. A preset without `lm_head.npz` (a keras-hub model) imports with
a zero output bias and tied embeddings, i.e. exactly keras-hub's `*CausalLM` logits.

keras-hub is in requirements.txt and imported only by these functions.
"""

from __future__ import annotations

import io
import os
from typing import List, Tuple

import numpy as np
import tensorflow as tf

from lag_tf.growth.state import ModelState, weight_shapes
from lag_tf.models.config import TransformerConfig

LAYER_NORM_EPSILON = 1e-5
BACKBONE_BY_ACTIVATION = {"gelu_tanh": "GPT2Backbone", "relu": "OPTBackbone"}
HEAD_FILE = "lm_head.npz"
INSTALL = "pip install -r requirements.txt (it pins keras-hub==0.32.0)"


def _keras_hub():
  try:
    import keras_hub  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(f"the keras_hub format needs keras-hub: {INSTALL}") from None
  return keras_hub


def backbone_for(config: TransformerConfig) -> str:
  """The keras-hub backbone class that computes `config`'s function; ValueError (one line)
  naming the first mismatch otherwise."""
  if config.kind != "decoder":
    raise ValueError("keras_hub: lag_tf's encoder is pre-LayerNorm and keras-hub's encoders "
                     "(BERT, RoBERTa, ALBERT, DistilBERT, ELECTRA) are post-LayerNorm: no exact "
                     "map")
  if config.activation not in BACKBONE_BY_ACTIVATION:
    raise ValueError(f"keras_hub: activation={config.activation!r} has no keras-hub pre-LN "
                     "decoder with learned positions (GPT2Backbone: 'gelu_tanh', OPTBackbone: "
                     "'relu')")
  if config.layer_norm_epsilon != LAYER_NORM_EPSILON:
    raise ValueError(f"keras_hub: layer_norm_epsilon={config.layer_norm_epsilon!r}, keras-hub's "
                     f"GPT-2 and OPT use {LAYER_NORM_EPSILON}")
  if config.attention_width != config.d_model:
    raise ValueError(f"keras_hub: num_heads * head_dim = {config.attention_width} != d_model = "
                     f"{config.d_model} (keras-hub's head size is hidden_dim // num_heads)")
  return BACKBONE_BY_ACTIVATION[config.activation]


def _pairs(backbone) -> List[Tuple[object, tuple]]:
  """(backbone variable, weight-tree path) for every backbone variable."""
  # pylint: disable=protected-access
  embeddings = backbone.embeddings if type(backbone).__name__ == "OPTBackbone" else backbone
  pairs = [(embeddings.token_embedding.embeddings, ("embeddings", "token")),
           (embeddings.position_embedding.position_embeddings, ("embeddings", "position")),
           (backbone.layer_norm.gamma, ("final_norm", "gamma")),
           (backbone.layer_norm.beta, ("final_norm", "beta"))]
  for i, layer in enumerate(backbone.transformer_layers):
    attention = layer._self_attention_layer
    for name, norm in (("attention_norm", layer._self_attention_layer_norm),
                       ("ffn_norm", layer._feedforward_layer_norm)):
      pairs += [(norm.gamma, ("blocks", i, f"{name}/gamma")),
                (norm.beta, ("blocks", i, f"{name}/beta"))]
    for name, dense in (("query", attention._query_dense), ("key", attention._key_dense),
                        ("value", attention._value_dense),
                        ("attention_output", attention._output_dense),
                        ("ffn_inner", layer._feedforward_intermediate_dense),
                        ("ffn_output", layer._feedforward_output_dense)):
      pairs += [(dense.kernel, ("blocks", i, f"{name}/kernel")),
                (dense.bias, ("blocks", i, f"{name}/bias"))]
  # pylint: enable=protected-access
  return pairs


def _get(tree, path):
  for key in path:
    tree = tree[key]
  return tree


def to_backbone(state: ModelState):
  """A keras-hub backbone holding `state`'s weights (all but the LM head's)."""
  keras_hub = _keras_hub()
  config = state.config
  cls = getattr(keras_hub.models, backbone_for(config))
  backbone = cls(vocabulary_size=config.vocab_size, num_layers=config.num_layers,
                 num_heads=config.num_heads, hidden_dim=config.d_model,
                 intermediate_dim=config.d_ff, dropout=config.dropout,
                 max_sequence_length=config.max_len, dtype=config.dtype_policy)
  for variable, path in _pairs(backbone):
    variable.assign(np.reshape(_get(state.weights, path), tuple(variable.shape)))
  return backbone


def head_weights(state: ModelState) -> dict:
  """The LM-head weights keras-hub's backbone does not hold."""
  head = {"output_bias": np.asarray(state.weights["head"]["output/bias"])}
  if not state.config.tie_embeddings:
    head["output_kernel"] = np.asarray(state.weights["head"]["output/kernel"])
  return head


def save_preset(state: ModelState, path: str) -> None:
  """A keras-hub preset directory (load with `keras_hub.models.Backbone.from_preset(path)`)
  plus `lm_head.npz`."""
  to_backbone(state).save_to_preset(path)
  buffer = io.BytesIO()  # np.savez seeks; GFile (gs://) writes only forward.
  np.savez(buffer, **head_weights(state))
  with tf.io.gfile.GFile(os.path.join(path, HEAD_FILE), "wb") as f:
    f.write(buffer.getvalue())


def state_from_backbone(backbone, head=None) -> ModelState:
  """A lag_tf decoder state computing `backbone`'s function (+ `head`: lm_head.npz's arrays;
  None: a zero output bias and tied embeddings, keras-hub's own causal-LM head)."""
  name = type(backbone).__name__
  activation = {v: k for k, v in BACKBONE_BY_ACTIVATION.items()}.get(name)
  if activation is None:
    raise ValueError(f"keras_hub: {name} does not map onto lag_tf's Transformer exactly (maps: "
                     f"{', '.join(sorted(BACKBONE_BY_ACTIVATION.values()))})")
  head = dict(head or {})
  config = TransformerConfig(
      kind="decoder", num_layers=backbone.num_layers, d_model=backbone.hidden_dim,
      num_heads=backbone.num_heads, d_ff=backbone.intermediate_dim,
      vocab_size=backbone.vocabulary_size, max_len=backbone.max_sequence_length,
      dropout=float(backbone.dropout), activation=activation,
      tie_embeddings="output_kernel" not in head, layer_norm_epsilon=LAYER_NORM_EPSILON)
  shapes = weight_shapes(config)
  weights = {"embeddings": {}, "final_norm": {}, "blocks": [{} for _ in shapes["blocks"]],
             "head": {"output/bias": np.asarray(head.get(
                 "output_bias", np.zeros(config.vocab_size)), np.float32)}}
  if "output_kernel" in head:
    weights["head"]["output/kernel"] = np.asarray(head["output_kernel"], np.float32)
  for variable, path in _pairs(backbone):
    value = np.asarray(variable.numpy(), np.float32).reshape(_get(shapes, path))
    _get(weights, path[:-1])[path[-1]] = value
  return ModelState(config, weights)


def state_from_preset(path: str) -> ModelState:
  """A preset directory (saved by `save_preset` or by keras-hub) as a lag_tf state."""
  backbone = _keras_hub().models.Backbone.from_preset(path)
  head_path = os.path.join(path, HEAD_FILE)
  head = None
  if tf.io.gfile.exists(head_path):
    with tf.io.gfile.GFile(head_path, "rb") as f:
      with np.load(io.BytesIO(f.read())) as arrays:
        head = {k: arrays[k] for k in arrays.files}
  return state_from_backbone(backbone, head)
