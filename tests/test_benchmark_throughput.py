"""The throughput benchmark's fixtures (never its timings): fixed batches, keras-hub model and
its per-sequence loss, the matmuls-only step."""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from lag_tf.models import TransformerConfig
from lag_tf.models.flops import training_flops_per_token
from lag_tf.training import losses

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                     "benchmarks", "throughput.py")
_SPEC = importlib.util.spec_from_file_location("benchmark_throughput", _PATH)
throughput = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(throughput)

TINY = TransformerConfig(kind="encoder", num_layers=1, d_model=16, num_heads=2, d_ff=32,
                         vocab_size=64, max_len=8)


def _take(dataset, n):
  return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(n)]


def test_fixed_batches_are_masked_and_cycle():
  data = throughput.FixedBatches(TINY, global_batch_size=4, num_batches=3, seed=0)
  batches = _take(data.train_dataset(None, 4, "mlm"), 4)
  assert batches[0]["inputs"].shape == (4, TINY.max_len)
  np.testing.assert_array_equal(batches[3]["inputs"], batches[0]["inputs"])  # cycles
  weights = np.concatenate([b["weights"] for b in batches[:3]])
  assert 0 < weights.mean() < 0.5
  masked = weights > 0
  assert np.all(batches[0]["targets"] >= throughput.NUM_SPECIAL_IDS)
  assert np.any(np.concatenate([b["inputs"] for b in batches[:3]])[masked] == throughput.MASK_ID)


def test_fixed_batches_split_by_input_pipeline():
  data = throughput.FixedBatches(TINY, global_batch_size=4, num_batches=2, seed=0)
  whole = _take(data.train_dataset(None, 4, "mlm"), 2)
  context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1,
                                       num_replicas_in_sync=2)
  second_half = _take(data.train_dataset(context, 4, "mlm"), 2)
  for full, half in zip(whole, second_half):
    np.testing.assert_array_equal(half["inputs"], full["inputs"][2:])


def test_keras_hub_model_gives_logits_at_every_position():
  model = throughput.build_keras_hub(TINY)
  logits = model(np.ones((2, TINY.max_len), np.int32))
  assert tuple(logits.shape) == (2, TINY.max_len, TINY.vocab_size)
  assert logits.dtype == tf.float32


def test_fixed_batches_report_their_predicted_positions():
  data = throughput.FixedBatches(TINY, global_batch_size=4, num_batches=3, seed=0)
  weights = data.examples["weights"]
  assert data.predicted_fraction() == pytest.approx(weights.mean())
  assert data.max_predictions_per_sequence() == max((row > 0).sum() for row in weights)
  assert data.masking.probability == 0.15


def test_keras_hub_per_sequence_loss_equals_the_gathered_loss():
  """keras-hub's own mask_positions interface and lag_tf's flat gather minimize the same
  loss on the benchmark's batches (so the ratio compares equal work)."""
  config = TINY.replace(max_len=16)
  data = throughput.FixedBatches(config, global_batch_size=4, num_batches=1, seed=0)
  batch = {k: tf.constant(v) for k, v in data.examples.items()}
  model = throughput.build_keras_hub(config)
  per_sequence = throughput.per_sequence_loss(data.max_predictions_per_sequence())
  got = [float(x) for x in per_sequence(model, batch, False)]
  want = [float(x) for x in losses.token_loss_sums(model, batch, False, mask_probability=0.15)]
  every = [float(x) for x in losses.token_loss_sums(model, batch, False)]
  assert got[1] == want[1] == every[1] == data.examples["weights"].sum() > 0
  np.testing.assert_allclose(got, want, rtol=1e-5)
  np.testing.assert_allclose(got, every, rtol=1e-5)


def test_step_matmuls_do_the_counted_flops():
  """The matmuls-only step is the counted step: its FLOPs equal training_flops_per_token with
  the head at the gathered rows."""
  batch, rows = 4, 16
  step = throughput.StepMatmuls(TINY, batch, head_rows=rows, calls=1)
  tokens = batch * TINY.max_len
  expected = tokens * training_flops_per_token(TINY, predicted_fraction=rows / tokens)
  assert step.flops == pytest.approx(expected)
  step.warm_up()
  step.measure()
  assert len(step.seconds) == 1 and step.seconds[0] > 0


def test_xla_step_with_the_gathered_head_compiles_at_benchmark_width(tmp_path, monkeypatch):
  """Regression: with the row gather inside the head's tf.cond, its IndexedSlices gradient left
  the cond with a runtime shape and tf2xla refused the step ("UnsortedSegmentSum must be a
  compile-time constant") at this width, while tiny models compiled fine."""
  monkeypatch.setattr(throughput, "GLOBAL_BATCH_SIZE", 4)
  config = throughput.CONFIG.replace(num_layers=1)
  data = throughput.FixedBatches(config, global_batch_size=4, num_batches=1, seed=0)
  first_losses = []
  for jit_compile in (True, False):
    trainer = throughput.make_trainer("lag_tf", jit_compile, data, str(tmp_path / str(jit_compile)),
                                      steps_per_loop=1, seed=0, config=config)
    # the gathered head, not every position
    assert trainer.engine.loss_fn.keywords == {"mask_probability": 0.15}
    first_losses.append(trainer.engine.run_steps(trainer.engine.train_iterator(), 1))
  assert np.isfinite(first_losses[0])
  assert first_losses[0] == pytest.approx(first_losses[1], abs=1e-4)


def test_update_only_runs_the_trainers_optimizer_step(tmp_path, monkeypatch):
  """The update-only row does `steps` real clip + AdamW updates of the Trainer's variables."""
  monkeypatch.setattr(throughput, "GLOBAL_BATCH_SIZE", 4)
  data = throughput.FixedBatches(TINY, global_batch_size=4, num_batches=1, seed=0)
  engine = throughput.make_trainer("lag_tf", False, data, str(tmp_path), steps_per_loop=1,
                                   seed=0, config=TINY).engine
  before = [v.numpy().copy() for v in engine.model.trainable_variables]
  update = throughput.UpdateOnly(engine, steps=3)
  update.warm_up()
  update.measure()
  assert int(engine.optimizer.iterations.numpy()) == 1 + 3
  assert len(update.seconds) == 1 and update.seconds[0] > 0
  after = engine.model.trainable_variables
  assert all(not np.array_equal(b, a.numpy()) for b, a in zip(before, after))
