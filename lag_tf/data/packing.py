"""Packing: documents -> one token stream (eos after each) -> fixed-length windows.

Window i of a token stream T is T[i*L : i*L + L + 1]: stride L, one token of overlap so
a causal example has the target of its last position. A stream of n tokens has
(n - 1) // L windows. The cached path gathers windows from the whole stream in memory;
the streaming path cuts the same windows on the fly, so both give identical windows for
the same document order.
"""

from __future__ import annotations

import tensorflow as tf

from lag_tf.data import tokenizers

# Documents tokenized per call: amortizes per-call cost (a Python call for SentencePiece)
# while keeping memory per element small.
DOCUMENTS_PER_GROUP = 64


def num_windows(num_tokens: int, sequence_length: int) -> int:
  return max((num_tokens - 1) // sequence_length, 0)


def tokenized_groups(
    texts: tf.data.Dataset,
    tokenizer: tokenizers.Tokenizer,
    documents_per_group: int = DOCUMENTS_PER_GROUP,
) -> tf.data.Dataset:
  """Scalar-string documents -> int32 [None] token runs, each document followed by eos."""

  def encode_group(group: tf.Tensor) -> tf.Tensor:
    ids = tokenizer.tf_encode(group)
    eos = tf.fill([ids.nrows(), 1], tf.constant(tokenizer.eos_id, tf.int32))
    return tf.concat([ids, eos], axis=1).flat_values

  return texts.batch(documents_per_group).map(
      encode_group, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def gather_windows(tokens: tf.Tensor, window_ids: tf.Tensor, sequence_length: int) -> tf.Tensor:
  """int32 [b, L + 1]: windows `window_ids` (int64 [b]) of the flat stream `tokens`."""
  starts = tf.cast(window_ids, tf.int64) * sequence_length
  offsets = tf.range(sequence_length + 1, dtype=tf.int64)
  return tf.cast(tf.gather(tokens, starts[:, None] + offsets[None, :]), tf.int32)


def windows_from_groups(groups: tf.data.Dataset, sequence_length: int) -> tf.data.Dataset:
  """Token runs -> int32 [L + 1] windows of their concatenation (stride L).

  A scan carries the tokens not yet in a window (including the overlap token) to the
  next run, so no token is lost at run boundaries and work is per run, not per token.
  """

  def cut(carry: tf.Tensor, run: tf.Tensor):
    stream = tf.concat([carry, run], axis=0)
    count = tf.maximum((tf.size(stream, tf.int64) - 1) // sequence_length, 0)
    windows = gather_windows(stream, tf.range(count), sequence_length)
    return stream[count * sequence_length:], windows

  initial_carry = tf.zeros([0], tf.int32)
  return groups.scan(initial_carry, cut).unbatch()
