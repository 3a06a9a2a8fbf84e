"""Token losses for one replica's batch, with the masked-LM head run only where it predicts.

A masked LM predicts ~15% of positions, yet a plain `model(inputs)` projects every position
onto the vocabulary: for BERT-mini (vocabulary 8192) that projection is a third of the training
FLOPs and its [tokens, vocabulary] logits dominate memory traffic. `token_loss_sums` instead
encodes the batch, gathers the hidden states of the predicted positions and runs the head on
those rows only.

Shapes must stay static for XLA, so the gather has a fixed `capacity` of rows per replica batch,
sized from the masking probability far above the expected count (`prediction_capacity`). The
result is exact in every case: a batch with more predicted positions than the capacity (about
one in a billion at the default 6 standard deviations) takes the every-position path through a
`tf.cond`, which XLA compiles as a conditional that runs one branch.
"""

from __future__ import annotations

import math
from typing import Optional, Tuple

import tensorflow as tf

# Rows of the gathered head matmul are rounded up to this (oneDNN and XLA tile in 16s).
_ROW_MULTIPLE = 16


def prediction_capacity(tokens: int, probability: float, sigmas: float = 6.0) -> int:
  """Rows for the gathered head: the expected count of predicted positions among `tokens`
  (each selected with `probability`) plus `sigmas` binomial standard deviations, rounded up
  to a multiple of 16 and at most `tokens`."""
  if tokens < 1 or not 0.0 < probability <= 1.0:
    raise ValueError(f"prediction_capacity needs tokens >= 1 and probability in (0, 1], got "
                     f"{tokens} and {probability}")
  mean = tokens * probability
  bound = mean + sigmas * math.sqrt(mean * (1.0 - probability))
  rows = _ROW_MULTIPLE * math.ceil(bound / _ROW_MULTIPLE)
  return min(tokens, max(rows, _ROW_MULTIPLE))


def token_sums(logits, targets, weights) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """(sum of weighted cross-entropies, sum of weights, weighted correct count)."""
  targets = tf.cast(targets, tf.int32)
  token_losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
  correct = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), targets), tf.float32)
  return (tf.reduce_sum(token_losses * weights), tf.reduce_sum(weights),
          tf.reduce_sum(correct * weights))


def token_loss_sums(model, batch, training: bool, mask_probability: Optional[float] = None,
                    capacity: Optional[int] = None) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """(sum of weighted token losses, sum of weights, weighted correct count) for one replica.

  `model` has `encode(token_ids)` -> [b, L, d] and `predict_logits(hidden)` -> [..., v].
  With `mask_probability=None` the head runs at every position (causal LM: every position
  predicts); otherwise at the positions with a non-zero weight, gathered into
  `prediction_capacity(tokens, mask_probability)` rows (or `capacity` rows, for tests).
  """
  weights = tf.cast(batch["weights"], tf.float32)
  if mask_probability is None and capacity is None:
    return token_sums(model(batch["inputs"], training=training), batch["targets"], weights)

  hidden = model.encode(batch["inputs"], training=training)
  flat_hidden = tf.reshape(hidden, [-1, hidden.shape[-1]])
  flat_targets = tf.reshape(batch["targets"], [-1])
  flat_weights = tf.reshape(weights, [-1])
  tokens = flat_weights.shape[0]
  if tokens is None:
    raise ValueError("the masked-LM head needs a static batch shape (drop_remainder batches)")
  if capacity is None:
    capacity = prediction_capacity(tokens, mask_probability)
  capacity = min(int(capacity), tokens)
  selected = flat_weights != 0.0
  count = tf.reduce_sum(tf.cast(selected, tf.int32))

  # The first `capacity` selected positions, in order; then unselected ones (weight 0, so they
  # add neither loss nor gradient) fill the remaining rows. The gather stays outside the
  # tf.cond: its gradient is IndexedSlices, whose shape would otherwise leave the cond as a
  # runtime value that XLA cannot size.
  order = tf.range(tokens)
  _, rows = tf.math.top_k(-tf.where(selected, order, order + tokens), k=capacity, sorted=True)
  predicted_hidden = tf.gather(flat_hidden, rows)
  predicted_targets = tf.gather(flat_targets, rows)
  predicted_weights = tf.gather(flat_weights, rows)

  def predicted_rows():
    return token_sums(model.predict_logits(predicted_hidden), predicted_targets, predicted_weights)

  def every_row():
    return token_sums(model.predict_logits(flat_hidden), flat_targets, flat_weights)

  if capacity == tokens:
    return every_row()
  return tf.cond(count <= capacity, predicted_rows, every_row)
