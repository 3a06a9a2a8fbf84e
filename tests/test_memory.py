"""The step-memory estimate (pure) and the check that refuses a step no replica can hold."""

import pytest
import tensorflow as tf

from lag_tf.training import memory
from lag_tf.models import TransformerConfig, count_parameters
from lag_tf.training.losses import prediction_capacity

TINY = TransformerConfig(num_layers=2, d_model=128, num_heads=2, d_ff=512, max_len=128)


def test_terms_follow_the_shapes():
  estimate = memory.estimate_step_memory(TINY, per_replica_batch=32)
  parameters = 4 * count_parameters(TINY)
  assert estimate.terms["parameters"] == parameters
  assert estimate.terms["optimizer slots"] == 3 * parameters  # m, v and the moment birth step
  assert estimate.terms["gradients"] == 2 * parameters
  # Scores and softmax kept for each layer, plus one layer's gradients: (2 + 1) x 2 x 4 bytes.
  assert estimate.terms["attention scores"] == 3 * 2 * 4 * 32 * 2 * 128 * 128
  assert estimate.train_peak == sum(estimate.terms.values())
  assert estimate.eval_peak < estimate.train_peak
  # Twice the batch: twice every batch-sized term, the same weights.
  double = memory.estimate_step_memory(TINY, per_replica_batch=64)
  for term in ("activations", "attention scores"):
    assert double.terms[term] == 2 * estimate.terms[term]
  assert double.terms["parameters"] == estimate.terms["parameters"]


def test_the_masked_lm_head_runs_at_predicted_rows_only():
  mlm = memory.estimate_step_memory(TINY, per_replica_batch=32, mask_probability=0.15)
  causal = memory.estimate_step_memory(TINY.replace(kind="decoder"), per_replica_batch=32)
  rows = prediction_capacity(32 * 128, 0.15)
  assert rows < 32 * 128
  assert mlm.terms["vocabulary head"] == 3 * rows * 260 * 4 + 3 * rows * 128 * 4
  assert causal.terms["vocabulary head"] == 3 * 32 * 128 * 260 * 4 + 32 * 128 * 128 * 4


def test_the_largest_term_names_what_to_lower():
  long = memory.estimate_step_memory(TINY.replace(max_len=100000), per_replica_batch=32)
  assert long.largest_term == "attention scores"
  wide = memory.estimate_step_memory(
      TINY.replace(d_model=8192, d_ff=32768, num_heads=64, vocab_size=256000), 1)
  assert wide.largest_term == "optimizer slots"
  line = memory.describe(long, budget=2**30, budget_source="host RAM")
  assert "largest term attention scores" in line and "1.0 GiB (host RAM)" in line


def test_check_refuses_a_step_larger_than_a_replica(monkeypatch):
  strategy = tf.distribute.get_strategy()
  budget, source = memory.replica_memory(strategy)
  assert budget == memory.host_memory_bytes() and source == "host RAM"
  memory.check_step_memory(TINY, 32, strategy, 0.15)  # Fits.
  with pytest.raises(memory.StepMemoryError, match=r"the largest term is attention scores .*"
                     r"lower TransformerConfig.max_len \(SEQUENCE_LENGTH\)"):
    memory.check_step_memory(TINY.replace(max_len=100000), 32, strategy, 0.15)
  monkeypatch.setattr(memory, "replica_memory", lambda s: (None, "TPU memory not reported"))
  memory.check_step_memory(TINY.replace(max_len=100000), 32, strategy, 0.15)  # Unknown: runs.
  memory.check_step_memory(TINY.replace(max_len=100000), 32, strategy, 0.15, enabled=False)


def test_format_bytes():
  assert memory.format_bytes(512) == "512 B"
  assert memory.format_bytes(3 * 2**30) == "3.0 GiB"
  assert memory.format_bytes(5 * 2**50) == "5120.0 TiB"
