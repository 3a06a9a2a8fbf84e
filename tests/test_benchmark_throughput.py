"""The throughput benchmark's fixtures (never its timings): fixed batches, keras-hub model."""

import importlib.util
import os

import numpy as np
import pytest
import tensorflow as tf

from lag_tf.models import TransformerConfig

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
  pytest.importorskip("keras_hub")
  model = throughput.build_keras_hub(TINY)
  logits = model(np.ones((2, TINY.max_len), np.int32))
  assert tuple(logits.shape) == (2, TINY.max_len, TINY.vocab_size)
  assert logits.dtype == tf.float32
