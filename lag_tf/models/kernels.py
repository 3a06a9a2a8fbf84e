"""Fused kernels for the Transformer block: LayerNorm, bias + GELU, and attention.

Why they exist: without a whole-step XLA compile (how TF runs on CPU by default, and how LAG
probes and growth stages run), oneDNN does the matmuls fast but LayerNorm and GELU run forward
and backward as a dozen separate elementwise passes over memory each. Here LayerNorm and
bias + GELU are each one `tf.custom_gradient` op whose forward and backward are small XLA
kernels (`tf.function(jit_compile=True)`): the matmuls stay with oneDNN, the elementwise work
is fused. Attention is two batched matmuls on a heads-major layout (Keras' einsums transpose
more). Inside a whole-step XLA compile (TPU, `jit_compile=True`) the kernels are inlined like
any other op. Measured by benchmarks/throughput.py (docs/design.md "Performance").

Numerics follow Keras: LayerNorm and softmax in float32 whatever the compute dtype, exact
(erf) GELU, outputs in the input's dtype. tests/test_kernels.py checks values and gradients
against Keras' layers.
"""

from __future__ import annotations

import math

import tensorflow as tf

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _column_sums(rows):
  """[..., n] -> [n]: sums over every leading axis.

  A matmul with a row of ones: XLA's CPU reduction over the major axis is slower (measured
  1.9 vs 2.6 ms for a [4096, 256] LayerNorm backward).
  """
  flat = tf.reshape(rows, [-1, tf.shape(rows)[-1]])
  return tf.matmul(tf.ones([1, tf.shape(flat)[0]], flat.dtype), flat)[0]


@tf.function(jit_compile=True)
def _layer_norm_forward(x, gamma, beta, epsilon):
  x = tf.cast(x, tf.float32)
  mean = tf.reduce_mean(x, -1, keepdims=True)
  centered = x - mean
  inv_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centered), -1, keepdims=True) + epsilon)
  return centered * inv_std * gamma + beta, mean, inv_std


@tf.function(jit_compile=True)
def _layer_norm_backward(dy, x, gamma, mean, inv_std):
  dy = tf.cast(dy, tf.float32)
  normalized = (tf.cast(x, tf.float32) - mean) * inv_std
  scaled = dy * gamma
  dx = inv_std * (scaled - tf.reduce_mean(scaled, -1, keepdims=True)
                  - normalized * tf.reduce_mean(scaled * normalized, -1, keepdims=True))
  return dx, _column_sums(dy * normalized), _column_sums(dy)


def layer_norm(x, gamma, beta, epsilon: float):
  """LayerNorm over the last axis; `gamma`, `beta` are float32 [d]; returns x's dtype."""

  @tf.custom_gradient
  def fused(x, gamma, beta):
    y, mean, inv_std = _layer_norm_forward(x, gamma, beta, epsilon)

    def grad(dy):
      dx, dgamma, dbeta = _layer_norm_backward(dy, x, gamma, mean, inv_std)
      return tf.cast(dx, x.dtype), dgamma, dbeta

    return tf.cast(y, x.dtype), grad

  return fused(x, tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32))


@tf.function(jit_compile=True)
def _bias_gelu_forward(h, bias):
  z = h + bias
  return 0.5 * z * (1.0 + tf.math.erf(z * _SQRT_HALF))


@tf.function(jit_compile=True)
def _bias_gelu_backward(dy, h, bias):
  z = h + bias
  cdf = 0.5 * (1.0 + tf.math.erf(z * _SQRT_HALF))
  pdf = tf.exp(-0.5 * tf.square(z)) * _INV_SQRT_2PI
  dz = dy * (cdf + z * pdf)
  return dz, _column_sums(dz)


def bias_gelu(h, bias):
  """Exact GELU(h + bias), the bias broadcast over the last axis; computed in h's dtype."""

  @tf.custom_gradient
  def fused(h, bias):
    def grad(dy):
      return _bias_gelu_backward(dy, h, bias)

    return _bias_gelu_forward(h, bias), grad

  return fused(h, tf.cast(bias, h.dtype))


def attention(query, key, value, causal: bool):
  """Scaled dot-product attention: [batch, length, heads, key_dim] in and out.

  Scores and softmax in float32; a causal mask lets position t attend to positions <= t.
  """
  scale = tf.cast(query.shape[-1] ** -0.5, query.dtype)
  heads_major = [0, 2, 1, 3]
  query = tf.transpose(query * scale, heads_major)
  key = tf.transpose(key, heads_major)
  value = tf.transpose(value, heads_major)
  scores = tf.cast(tf.matmul(query, key, transpose_b=True), tf.float32)
  if causal:
    length = tf.shape(scores)[-1]
    allowed = tf.linalg.band_part(tf.ones([length, length], tf.bool), -1, 0)
    scores = tf.where(allowed, scores, tf.float32.min * 0.7)
  probs = tf.cast(tf.nn.softmax(scores, axis=-1), value.dtype)
  return tf.transpose(tf.matmul(probs, value), heads_major)
