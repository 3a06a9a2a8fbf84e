"""The masked-LM loss that runs the head only at predicted positions equals the every-position
loss: values, gradients, under XLA, and when a batch overflows the gathered capacity."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from lag_tf.models import TransformerConfig, build_transformer
from lag_tf.training import losses

CONFIG = TransformerConfig(kind="encoder", num_layers=2, d_model=16, num_heads=2, d_ff=32,
                           vocab_size=40, max_len=12, dropout=0.0)


def test_prediction_capacity_by_hand():
  # 4096 tokens at 15%: mean 614.4, sd sqrt(614.4 * 0.85) = 22.85 -> 751.5 -> 752 (47 * 16).
  assert losses.prediction_capacity(4096, 0.15) == 752
  # 256 tokens: mean 38.4, sd 5.71 -> 72.7 -> 80.
  assert losses.prediction_capacity(256, 0.15) == 80
  # Never more rows than tokens, never fewer than 16.
  assert losses.prediction_capacity(10, 0.5) == 10
  assert losses.prediction_capacity(1000, 0.001, sigmas=0) == 16
  with pytest.raises(ValueError, match="probability"):
    losses.prediction_capacity(100, 0.0)


def _batch(seed, probability=0.15, batch_size=4):
  rng = np.random.default_rng(seed)
  shape = (batch_size, CONFIG.max_len)
  targets = rng.integers(5, CONFIG.vocab_size, shape, dtype=np.int32)
  weights = (rng.random(shape) < probability).astype(np.float32)
  inputs = np.where(weights > 0, 4, targets).astype(np.int32)
  return {"inputs": tf.constant(inputs), "targets": tf.constant(targets),
          "weights": tf.constant(weights)}


def _sums_and_gradients(model, batch, jit_compile=False, **kwargs):
  @tf.function(jit_compile=jit_compile)
  def run():
    with tf.GradientTape() as tape:
      loss_sum, weight_sum, correct = losses.token_loss_sums(model, batch, True, **kwargs)
    gradients = tape.gradient(loss_sum, model.trainable_variables)
    return [loss_sum, weight_sum, correct], [tf.convert_to_tensor(g) for g in gradients]
  sums, gradients = run()
  return [float(s) for s in sums], [g.numpy() for g in gradients]


@pytest.mark.parametrize("jit_compile", [False, True])
@pytest.mark.parametrize("capacity", [None, 4])  # default (gathered) and overflowing (fallback)
def test_gathered_head_equals_every_position(capacity, jit_compile):
  keras.utils.set_random_seed(0)
  model = build_transformer(CONFIG)
  batch = _batch(seed=1)
  count = int(tf.reduce_sum(batch["weights"]))
  assert count > 4  # so capacity=4 really overflows and takes the fallback
  full_sums, full_grads = _sums_and_gradients(model, batch, jit_compile)
  sums, grads = _sums_and_gradients(model, batch, jit_compile, mask_probability=0.15,
                                    capacity=capacity)
  assert sums[1] == full_sums[1] == count
  np.testing.assert_allclose(sums, full_sums, rtol=1e-5)
  for got, want in zip(grads, full_grads):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_gathered_head_runs_fewer_rows():
  keras.utils.set_random_seed(0)
  model = build_transformer(CONFIG)
  rows_seen = []
  predict_logits = model.predict_logits

  def recording(hidden):
    rows_seen.append(hidden.shape[0])
    return predict_logits(hidden)

  model.predict_logits = recording
  # 192 tokens: mean 28.8, sd 4.95 -> 58.5 -> 64 rows.
  batch = _batch(seed=2, batch_size=16)
  assert losses.prediction_capacity(192, 0.15) == 64
  losses.token_loss_sums(model, batch, False, mask_probability=0.15)
  assert rows_seen == [64]  # eager: tf.cond runs the gathered branch only


def test_no_masked_position_gives_zero_loss_and_weight():
  keras.utils.set_random_seed(0)
  model = build_transformer(CONFIG)
  batch = _batch(seed=3, probability=0.0)
  sums, grads = _sums_and_gradients(model, batch, mask_probability=0.15)
  assert sums == [0.0, 0.0, 0.0]
  assert all(not np.any(g) for g in grads)
