"""Training objectives on packed token windows: BERT masking ('mlm') and causal shift.

Each batch arrives as windows int32 [b, L + 1] (L + 1 tokens so a causal example has
its last target) with the global example number of each row. MLM masking is a pure
function of (seed, stream, global example number, position): identical whatever the
batching, distribution strategy or resume point.

Why a hand-written counter-based hash rather than tf.random.stateless_*: those take one
seed per call, so per-example seeds would need one op per example; the integer hash
below gives independent uniforms for every (example, position) in a few batch ops.
lowbias32 (C. Wellons' integer hash) has near-ideal avalanche, plenty for masking.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

OBJECTIVES = ('mlm', 'causal')

# Independent random streams; the mask of the eval set must not repeat the train one.
TRAIN_STREAM = 1
EVAL_STREAM = 2
_SELECT, _ACTION, _REPLACEMENT = 0, 1, 2  # sub-streams of a stream

_GOLDEN_RATIO_32 = 0x9E3779B9


def check_objective(objective: str) -> None:
  if objective not in OBJECTIVES:
    raise ValueError(f'unknown objective {objective!r}; expected one of {OBJECTIVES}')


def _mix32(x: tf.Tensor) -> tf.Tensor:
  """lowbias32: a bijective uint32 -> uint32 hash."""
  x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))
  x = x * tf.constant(0x7FEB352D, tf.uint32)
  x = tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(15, tf.uint32)))
  x = x * tf.constant(0x846CA68B, tf.uint32)
  return tf.bitwise.bitwise_xor(x, tf.bitwise.right_shift(x, tf.constant(16, tf.uint32)))


def _low_and_high_words(value: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  value = tf.cast(value, tf.int64)
  low = tf.cast(tf.bitwise.bitwise_and(value, tf.constant(0xFFFFFFFF, tf.int64)), tf.uint32)
  high = tf.cast(tf.bitwise.right_shift(value, tf.constant(32, tf.int64)), tf.uint32)
  return low, high


def example_uniforms(
    seed: int, stream: int, example_ids: tf.Tensor, length: int
) -> tf.Tensor:
  """float32 [b, length] in [0, 1): a pure function of (seed, stream, example, position)."""
  seed_low, seed_high = _low_and_high_words(tf.constant(seed, tf.int64))
  xor = tf.bitwise.bitwise_xor
  key = _mix32(xor(_mix32(xor(seed_low, _mix32(tf.constant(stream, tf.uint32)))), seed_high))
  example_low, example_high = _low_and_high_words(example_ids)
  per_example = _mix32(xor(_mix32(xor(key, example_low)), example_high))
  # A Weyl sequence over positions, hashed twice (as in splitmix): distinct inputs for
  # every position, decorrelated outputs.
  positions = tf.cast(tf.range(length), tf.uint32) * tf.constant(_GOLDEN_RATIO_32, tf.uint32)
  bits = _mix32(_mix32(per_example[:, None] + positions[None, :]))
  # The top 24 bits are exactly representable in float32.
  return tf.cast(tf.bitwise.right_shift(bits, tf.constant(8, tf.uint32)), tf.float32) * (
      1.0 / (1 << 24))


@dataclasses.dataclass(frozen=True)
class MaskingSpec:
  """What BERT masking needs to know about the vocabulary and the rates."""
  mask_id: int
  special_ids: tuple[int, ...]  # never selected (separators, padding, ...)
  replacement_ids: np.ndarray  # ids a random replacement may take
  probability: float = 0.15  # share of (non-special) positions selected
  mask_fraction: float = 0.8  # of the selected: replaced by mask_id
  random_fraction: float = 0.1  # of the selected: replaced by a random id

  def __post_init__(self):
    if not 0.0 < self.probability < 1.0:
      raise ValueError(f'mlm_probability must be in (0, 1), got {self.probability!r}')
    if len(self.replacement_ids) == 0:
      raise ValueError('the vocabulary has no non-special id to use as replacement')


def mlm_features(
    windows: tf.Tensor, example_ids: tf.Tensor, seed: int, stream: int, spec: MaskingSpec
) -> dict[str, tf.Tensor]:
  """BERT masking of windows[:, :L]: inputs, targets (the original ids), weights.

  Each non-special position is selected with probability `spec.probability`; of the
  selected 80% become the mask id, 10% a random non-special id, 10% stay. Weights are
  1.0 at selected positions, 0 elsewhere.
  """
  tokens = windows[:, :-1]
  length = tokens.shape[1]
  select = example_uniforms(seed, stream * 16 + _SELECT, example_ids, length)
  action = example_uniforms(seed, stream * 16 + _ACTION, example_ids, length)
  replacement = example_uniforms(seed, stream * 16 + _REPLACEMENT, example_ids, length)
  is_special = tf.reduce_any(
      tokens[..., None] == tf.constant(spec.special_ids, tf.int32), axis=-1)
  selected = (select < spec.probability) & ~is_special
  use_mask = selected & (action < spec.mask_fraction)
  use_random = selected & (action >= spec.mask_fraction) & (
      action < spec.mask_fraction + spec.random_fraction)
  candidates = tf.constant(spec.replacement_ids, tf.int32)
  num_candidates = len(spec.replacement_ids)
  replacement_index = tf.minimum(
      tf.cast(replacement * num_candidates, tf.int32), num_candidates - 1)
  random_tokens = tf.gather(candidates, replacement_index)
  inputs = tf.where(use_mask, tf.constant(spec.mask_id, tf.int32),
                    tf.where(use_random, random_tokens, tokens))
  return {
      'inputs': inputs,
      'targets': tokens,
      'weights': tf.cast(selected, tf.float32),
  }


def causal_features(windows: tf.Tensor) -> dict[str, tf.Tensor]:
  """Next-token prediction: inputs = tokens[0:L], targets = tokens[1:L+1], weights 1."""
  inputs = windows[:, :-1]
  return {
      'inputs': inputs,
      'targets': windows[:, 1:],
      'weights': tf.ones_like(inputs, tf.float32),
  }


def features_for(
    objective: str, windows: tf.Tensor, example_ids: tf.Tensor, seed: int, stream: int,
    spec: MaskingSpec
) -> dict[str, tf.Tensor]:
  check_objective(objective)
  if objective == 'mlm':
    return mlm_features(windows, example_ids, seed, stream, spec)
  return causal_features(windows)
