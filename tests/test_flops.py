"""FLOP counter against hand-computed counts, and the one convention every counter charges."""

import pytest

from lag_tf.models import TransformerConfig
from lag_tf.models.flops import flops_per_token, forward_flops_per_token, training_flops_per_token


def test_tiny_decoder_by_hand():
  config = TransformerConfig(kind="decoder", num_layers=2, d_model=4, num_heads=2, d_ff=8,
                             vocab_size=10, max_len=6)
  # Per block: q,k,v 3*4*4=48, output 4*4=16, ffn 4*8 + 8*4 = 64 -> 128; 2 blocks 256; head 40.
  assert training_flops_per_token(config, 0, predicted_fraction=1.0) == 6 * 296  # Matmuls alone.
  assert training_flops_per_token(config, predicted_fraction=1.0) == 6 * 296 + 12 * 2 * 6 * 4


def test_encoder_adds_the_mlm_transform_and_head_dim_counts():
  config = TransformerConfig(kind="encoder", num_layers=1, d_model=4, num_heads=3, head_dim=2,
                             d_ff=8, vocab_size=10, max_len=5)
  # q,k,v 3*4*6=72, output 6*4=24, ffn 64 -> 160; head 40 + transform 16.
  assert training_flops_per_token(config, 0, predicted_fraction=1.0) == 6 * 216  # Matmuls alone.
  assert training_flops_per_token(config, sequence_length=7, predicted_fraction=1.0) == (
      6 * 216 + 12 * 1 * 7 * 6)


def test_head_counted_only_for_the_predicted_share():
  config = TransformerConfig(kind="encoder", num_layers=1, d_model=4, num_heads=2, d_ff=8,
                             vocab_size=10, max_len=5)
  # Blocks: q,k,v 48 + output 16 + ffn 64 = 128; head: output 40 + transform 16 = 56.
  assert training_flops_per_token(config, 0, predicted_fraction=1.0) == 6 * 184  # Matmuls alone.
  attention = 12 * 1 * 5 * 4
  assert training_flops_per_token(config, predicted_fraction=1.0) == 6 * 184 + attention
  assert training_flops_per_token(config, predicted_fraction=0.25) == (
      6 * 128 + 6 * 56 * 0.25 + attention)
  assert training_flops_per_token(config, predicted_fraction=0.0) == 6 * 128 + attention
  with pytest.raises(ValueError, match="predicted_fraction"):
    training_flops_per_token(config, predicted_fraction=1.5)


def test_the_convention_charges_the_head_where_the_loss_predicts():
  """A masked LM's head at its mask probability (None: the loss runs it everywhere), a causal
  LM's at every position whatever the data's masking says."""
  encoder = TransformerConfig(kind="encoder", num_layers=1, d_model=4, num_heads=2, d_ff=8,
                              vocab_size=10, max_len=5)
  attention = 12 * 1 * 5 * 4
  assert flops_per_token(encoder, 0.25) == 6 * 128 + 6 * 56 * 0.25 + attention
  assert flops_per_token(encoder, None) == 6 * 184 + attention
  decoder = encoder.replace(kind="decoder")  # Head: the output projection alone, 40.
  assert flops_per_token(decoder, 0.25) == flops_per_token(decoder, None) == (
      6 * 168 + attention)


def test_forward_pass_is_a_third_of_training():
  config = TransformerConfig(kind="decoder", num_layers=2, d_model=4, num_heads=2, d_ff=8,
                             vocab_size=10, max_len=6)
  # By hand, as in test_tiny_decoder_by_hand: 2 x matmul parameters + 4 x L x s x a.
  assert forward_flops_per_token(config, None) == 2 * 296 + 4 * 2 * 6 * 4
  encoder = config.replace(kind="encoder")
  assert forward_flops_per_token(encoder, 0.5) == flops_per_token(encoder, 0.5) / 3
