"""The fused kernels compute what Keras' layers compute: values and gradients, float32 and
bfloat16, eagerly, in a graph and inside a whole-step XLA compile; and a Transformer with them
equals one without them on the same variables. (Under MirroredStrategy they are exercised by
test_training's strategy-equivalence test, which trains with the default config.)"""

import numpy as np
import pytest
import tensorflow as tf
import keras

from lag_tf.models import TransformerConfig, build_transformer, kernels


def _random(shape, seed, scale=1.0):
  return tf.random.stateless_normal(shape, seed=[seed, 0]) * scale


def _values_and_grads(fn, inputs, cotangent):
  with tf.GradientTape() as tape:
    tape.watch(inputs)
    out = fn(*inputs)
    # A non-uniform cotangent, so a gradient that ignores dy's shape cannot pass. It is made
    # outside: XLA's stateless random numbers differ from the CPU kernel's.
    loss = tf.reduce_sum(tf.cast(out, tf.float32) * cotangent)
  return [out] + tape.gradient(loss, inputs)


def _run(fn, inputs, mode):
  cotangent = _random(fn(*inputs).shape, 99)
  call = lambda *args: _values_and_grads(fn, list(args), cotangent)
  if mode == "graph":
    call = tf.function(call)
  elif mode == "xla":
    call = tf.function(call, jit_compile=True)
  return [t.numpy() for t in call(*inputs)]


def _assert_all_close(actual, expected, tolerance):
  assert len(actual) == len(expected)
  for a, e in zip(actual, expected):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(e, np.float32),
                               rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_layer_norm_matches_keras(mode):
  x = _random([3, 5, 16], 1, scale=3.0) + 2.0
  gamma, beta = _random([16], 2) + 1.0, _random([16], 3)
  norm = keras.layers.LayerNormalization(epsilon=1e-6)
  norm.build(x.shape)
  norm.gamma.assign(gamma)
  norm.beta.assign(beta)
  with tf.GradientTape() as tape:
    tape.watch(x)
    out = norm(x)
    loss = tf.reduce_sum(out * _random(out.shape, 99))
  expected = [out] + tape.gradient(loss, [x, norm.gamma, norm.beta])
  actual = _run(lambda x, g, b: kernels.layer_norm(x, g, b, 1e-6), [x, gamma, beta], mode)
  _assert_all_close(actual, expected, 1e-4)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_bias_gelu_matches_keras(mode):
  h, bias = _random([4, 6, 32], 4, scale=2.0), _random([32], 5)
  expected = _run(lambda h, b: keras.activations.gelu(h + b), [h, bias], "eager")
  actual = _run(kernels.bias_gelu, [h, bias], mode)
  _assert_all_close(actual, expected, 1e-5)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_attention_matches_keras(causal, mode):
  query, key, value = (_random([2, 7, 3, 8], seed) for seed in (6, 7, 8))
  expected = _run(
      lambda q, k, v: keras.ops.dot_product_attention(q, k, v, is_causal=causal),
      [query, key, value], "eager")
  actual = _run(lambda q, k, v: kernels.attention(q, k, v, causal=causal),
                [query, key, value], mode)
  _assert_all_close(actual, expected, 1e-5)


def test_bfloat16_inputs_keep_their_dtype_and_float32_statistics():
  x = tf.cast(_random([2, 4, 16], 9, scale=3.0) + 100.0, tf.bfloat16)
  gamma, beta = tf.ones([16]), tf.zeros([16])
  out = kernels.layer_norm(x, gamma, beta, 1e-6)
  assert out.dtype == tf.bfloat16
  # Statistics in float32: a bf16 mean of values near 100 would lose the +-3 spread entirely.
  expected = keras.layers.LayerNormalization(epsilon=1e-6, dtype="mixed_bfloat16")(x)
  np.testing.assert_allclose(tf.cast(out, tf.float32).numpy(),
                             tf.cast(expected, tf.float32).numpy(), atol=0.05)
  hidden = kernels.bias_gelu(x, tf.zeros([16]))
  assert hidden.dtype == tf.bfloat16
  attended = kernels.attention(*(tf.cast(_random([2, 4, 2, 8], s), tf.bfloat16) for s in (1, 2, 3)),
                               causal=True)
  assert attended.dtype == tf.bfloat16


@pytest.mark.parametrize("kind,dtype_policy,activation", [
    ("encoder", "float32", "gelu"), ("decoder", "float32", "gelu"),
    ("encoder", "mixed_bfloat16", "gelu"), ("decoder", "mixed_bfloat16", "gelu"),
    ("encoder", "float32", "silu")])  # silu: fused LayerNorm and attention, Keras' FFN
def test_transformer_with_fused_kernels_equals_keras_layers(kind, dtype_policy, activation):
  config = TransformerConfig(kind=kind, num_layers=2, d_model=32, num_heads=4, d_ff=64,
                             vocab_size=50, max_len=12, dtype_policy=dtype_policy,
                             activation=activation)
  keras.utils.set_random_seed(0)
  fused = build_transformer(config)
  plain = build_transformer(config.replace(fused_kernels=False))
  for target, source in zip(plain.weights, fused.weights):
    target.assign(source)
  tokens = tf.random.stateless_uniform([3, 12], seed=[1, 2], maxval=50, dtype=tf.int32)

  def logits_and_grads(model):
    with tf.GradientTape() as tape:
      logits = model(tokens, training=True)
      loss = tf.reduce_sum(logits * _random(logits.shape, 11, scale=0.1))
    grads = tape.gradient(loss, model.trainable_variables)
    return [logits] + [tf.convert_to_tensor(g) for g in grads]  # embeddings: IndexedSlices

  tolerance = 1e-4 if dtype_policy == "float32" else 5e-2
  _assert_all_close(logits_and_grads(fused), logits_and_grads(plain), tolerance)
