"""Pre-LayerNorm Transformer in Keras 3: `encoder` (masked LM) and `decoder` (causal LM).

Blocks are addressable by index (`model.blocks[i]`), and every variable has a stable name in
`model.weight_tree()`; the growth operators (lag_tf/growth) read and write weights through that
tree, never through Keras' auto-generated variable paths. With `config.fused_kernels` (the
default) the blocks' LayerNorms, bias + GELU and attention run as lag_tf.models.kernels' fused
TensorFlow ops (same function, same variables, faster); with it off, only `keras.ops` is used.

Weight tree layout (shapes for d = d_model, a = num_heads * key_dim, f = d_ff, v = vocab_size):

  embeddings: token [v, d], position [max_len, d]
  blocks[i]:  attention_norm/{gamma,beta} [d]
              query|key|value/kernel [d, a], query|key|value/bias [a]
              attention_output/kernel [a, d], attention_output/bias [d]
              ffn_norm/{gamma,beta} [d]
              ffn_inner/kernel [d, f], ffn_inner/bias [f]
              ffn_output/kernel [f, d], ffn_output/bias [d]
  final_norm: gamma, beta [d]
  head:       encoder only: transform/kernel [d, d], transform/bias [d],
                            transform_norm/{gamma,beta} [d]
              output/bias [v]; output/kernel [d, v] only when embeddings are untied
"""

from __future__ import annotations

from typing import Dict, List

import keras
from keras import ops

from lag_tf.models import kernels
from lag_tf.models.config import TransformerConfig


def gelu_tanh(x):
  """GELU with the tanh approximation (GPT-2's; keras-hub's `gelu_approximate`)."""
  return keras.activations.gelu(x, approximate=True)


def _dense(units: int, name: str, dtype, activation=None) -> keras.layers.Dense:
  return keras.layers.Dense(
      units, activation=gelu_tanh if activation == "gelu_tanh" else activation, name=name,
      dtype=dtype, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02))


def _norm(config: TransformerConfig, name: str, dtype) -> keras.layers.LayerNormalization:
  return keras.layers.LayerNormalization(epsilon=config.layer_norm_epsilon, name=name, dtype=dtype)


def _layer_weights(layer: keras.layers.Layer) -> Dict[str, keras.Variable]:
  """Dense -> kernel/bias, LayerNormalization -> gamma/beta, keyed '<layer name>/<var>'."""
  if isinstance(layer, keras.layers.LayerNormalization):
    return {f"{layer.name}/gamma": layer.gamma, f"{layer.name}/beta": layer.beta}
  return {f"{layer.name}/kernel": layer.kernel, f"{layer.name}/bias": layer.bias}


class TransformerBlock(keras.layers.Layer):
  """x + Attention(LN(x)), then x + FFN(LN(x))."""

  def __init__(self, config: TransformerConfig, index: int, **kwargs):
    super().__init__(name=f"block_{index}", dtype=config.dtype_policy, **kwargs)
    self.config = config
    self.index = index
    dtype = config.dtype_policy
    self.attention_norm = _norm(config, "attention_norm", dtype)
    self.query = _dense(config.attention_width, "query", dtype)
    self.key = _dense(config.attention_width, "key", dtype)
    self.value = _dense(config.attention_width, "value", dtype)
    self.attention_output = _dense(config.d_model, "attention_output", dtype)
    self.ffn_norm = _norm(config, "ffn_norm", dtype)
    self.ffn_inner = _dense(config.d_ff, "ffn_inner", dtype, activation=config.activation)
    self.ffn_output = _dense(config.d_model, "ffn_output", dtype)
    self.attention_dropout = keras.layers.Dropout(config.dropout, dtype=dtype)
    self.ffn_dropout = keras.layers.Dropout(config.dropout, dtype=dtype)

  def build(self, input_shape):
    width = self.config.attention_width
    self.attention_norm.build(input_shape)
    for projection in (self.query, self.key, self.value):
      projection.build(input_shape)
    self.attention_output.build(input_shape[:-1] + (width,))
    self.ffn_norm.build(input_shape)
    self.ffn_inner.build(input_shape)
    self.ffn_output.build(input_shape[:-1] + (self.config.d_ff,))
    self.built = True

  def call(self, x, training=False):
    config = self.config
    batch, length = ops.shape(x)[0], ops.shape(x)[1]
    heads_shape = (batch, length, config.num_heads, config.key_dim)
    normed = self._norm(self.attention_norm, x)
    query = ops.reshape(self.query(normed), heads_shape)
    key = ops.reshape(self.key(normed), heads_shape)
    value = ops.reshape(self.value(normed), heads_shape)
    causal = config.kind == "decoder"
    if config.fused_kernels:
      attended = kernels.attention(query, key, value, causal=causal)
    else:
      attended = ops.dot_product_attention(query, key, value, is_causal=causal)
    attended = ops.reshape(attended, (batch, length, config.attention_width))
    x = x + self.attention_dropout(self.attention_output(attended), training=training)
    normed = self._norm(self.ffn_norm, x)
    if config.fused_kernels and config.activation == "gelu":
      hidden = kernels.bias_gelu(ops.matmul(normed, self.ffn_inner.kernel), self.ffn_inner.bias)
    else:
      hidden = self.ffn_inner(normed)
    return x + self.ffn_dropout(self.ffn_output(hidden), training=training)

  def _norm(self, layer: keras.layers.LayerNormalization, x):
    if self.config.fused_kernels:
      return kernels.layer_norm(x, layer.gamma, layer.beta, self.config.layer_norm_epsilon)
    return layer(x)

  def weight_dict(self) -> Dict[str, keras.Variable]:
    weights = {}
    for layer in (self.attention_norm, self.query, self.key, self.value, self.attention_output,
                  self.ffn_norm, self.ffn_inner, self.ffn_output):
      weights.update(_layer_weights(layer))
    return weights


class Transformer(keras.Model):
  """Token + position embeddings, `num_layers` blocks, final LayerNorm, LM head.

  `call(token_ids)` returns float32 logits [batch, length, vocab_size]; it is
  `predict_logits(encode(token_ids))`.
  """

  def __init__(self, config: TransformerConfig, **kwargs):
    super().__init__(name=f"transformer_{config.kind}", **kwargs)
    self.config = config
    dtype = config.dtype_policy
    init = keras.initializers.TruncatedNormal(stddev=0.02)
    self.token_embedding = keras.layers.Embedding(
        config.vocab_size, config.d_model, embeddings_initializer=init, name="token_embedding",
        dtype=dtype)
    self.position_embedding = keras.layers.Embedding(
        config.max_len, config.d_model, embeddings_initializer=init, name="position_embedding",
        dtype=dtype)
    self.embedding_dropout = keras.layers.Dropout(config.dropout, dtype=dtype)
    self.blocks: List[TransformerBlock] = [
        TransformerBlock(config, i) for i in range(config.num_layers)]
    self.final_norm = _norm(config, "final_norm", dtype)
    if config.kind == "encoder":
      self.transform = _dense(config.d_model, "transform", dtype, activation=config.activation)
      self.transform_norm = _norm(config, "transform_norm", dtype)
    if not config.tie_embeddings:
      self.output_projection = keras.layers.Dense(
          config.vocab_size, use_bias=False, kernel_initializer=init, name="output", dtype=dtype)

  def build(self, input_shape):
    hidden_shape = tuple(input_shape) + (self.config.d_model,)
    self.token_embedding.build(input_shape)
    self.position_embedding.build(input_shape)
    for block in self.blocks:
      block.build(hidden_shape)
    self.final_norm.build(hidden_shape)
    if self.config.kind == "encoder":
      self.transform.build(hidden_shape)
      self.transform_norm.build(hidden_shape)
    if not self.config.tie_embeddings:
      self.output_projection.build(hidden_shape)
    # Kept outside a sublayer so the tied and untied heads share one bias name.
    self.output_bias = self.add_weight(
        shape=(self.config.vocab_size,), initializer="zeros", name="output_bias")
    self.built = True

  def call(self, token_ids, training=False):
    return self.predict_logits(self.encode(token_ids, training=training))

  def encode(self, token_ids, training=False):
    """Token ids [batch, length] -> final hidden states [batch, length, d_model]."""
    length = ops.shape(token_ids)[1]
    positions = ops.arange(length, dtype="int32")
    x = self.token_embedding(token_ids) + self.position_embedding(positions)[None]
    x = self.embedding_dropout(x, training=training)
    for block in self.blocks:
      x = block(x, training=training)
    return self.final_norm(x)

  def predict_logits(self, hidden):
    """Hidden states [..., d_model] -> float32 logits [..., vocab_size].

    Separate from `encode` so a masked-LM loss can run the head only at the positions it
    predicts (lag_tf.training.losses): the vocabulary projection is the largest matmul.
    """
    x = hidden
    if self.config.kind == "encoder":
      x = self.transform_norm(self.transform(x))
    if self.config.tie_embeddings:
      embeddings = ops.cast(self.token_embedding.embeddings, x.dtype)
      logits = ops.matmul(x, ops.transpose(embeddings))
    else:
      logits = self.output_projection(x)
    # Softmax and loss in float32 even under mixed_bfloat16.
    return ops.cast(logits, "float32") + self.output_bias

  def weight_tree(self) -> dict:
    """The stable, growth-addressable view of every variable (see the module docstring)."""
    head = {"output/bias": self.output_bias}
    if self.config.kind == "encoder":
      head.update(_layer_weights(self.transform))
      head.update(_layer_weights(self.transform_norm))
    if not self.config.tie_embeddings:
      head["output/kernel"] = self.output_projection.kernel
    return {
        "embeddings": {"token": self.token_embedding.embeddings,
                       "position": self.position_embedding.embeddings},
        "blocks": [block.weight_dict() for block in self.blocks],
        "final_norm": {"gamma": self.final_norm.gamma, "beta": self.final_norm.beta},
        "head": head,
    }


def build_transformer(config: TransformerConfig, batch_size: int = 1) -> Transformer:
  """Creates the model and its variables (call inside `strategy.scope()` to mirror them)."""
  model = Transformer(config)
  model.build((batch_size, config.max_len))
  return model


def count_parameters(config: TransformerConfig) -> int:
  """Number of trainable parameters, from the config alone (no TF needed)."""
  d, a, f, v = config.d_model, config.attention_width, config.d_ff, config.vocab_size
  per_block = 2 * d + 3 * (d * a + a) + (a * d + d) + 2 * d + (d * f + f) + (f * d + d)
  head = v + (0 if config.tie_embeddings else d * v)
  if config.kind == "encoder":
    head += d * d + d + 2 * d
  return v * d + config.max_len * d + config.num_layers * per_block + 2 * d + head
