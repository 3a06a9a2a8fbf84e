"""The Transformer: shapes, parameter counts, stable weight names, causality, dtypes."""

import numpy as np
import pytest

from lag_tf.models import TransformerConfig, build_transformer, count_parameters

TINY = dict(num_layers=2, d_model=32, num_heads=2, d_ff=64, vocab_size=50, max_len=16)


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
@pytest.mark.parametrize("tie", [True, False])
def test_shapes_and_parameter_count(kind, tie):
  config = TransformerConfig(kind=kind, tie_embeddings=tie, **TINY)
  model = build_transformer(config)
  logits = model(np.zeros((3, 16), np.int32))
  assert logits.shape == (3, 16, 50)
  assert model.count_params() == count_parameters(config)
  tree = model.weight_tree()
  in_tree = [v for group in [tree["embeddings"], tree["final_norm"], tree["head"]] + tree["blocks"]
             for v in group.values()]
  # The tree covers every trainable variable exactly once.
  assert sorted(id(v) for v in in_tree) == sorted(id(v) for v in model.trainable_variables)
  assert ("output/kernel" in tree["head"]) == (not tie)
  assert ("transform/kernel" in tree["head"]) == (kind == "encoder")


def test_block_weight_names_and_shapes():
  config = TransformerConfig(head_dim=8, **dict(TINY, num_heads=3))
  model = build_transformer(config)
  assert len(model.blocks) == 2
  block = model.blocks[1].weight_dict()
  assert block["query/kernel"].shape == (32, 24)
  assert block["attention_output/kernel"].shape == (24, 32)
  assert block["ffn_inner/kernel"].shape == (32, 64)
  assert block["ffn_output/kernel"].shape == (64, 32)
  assert block["attention_norm/gamma"].shape == (32,)
  assert model.blocks[1].name == "block_1"


def _logits(model, tokens):
  return np.asarray(model(tokens))


def test_decoder_is_causal_and_encoder_is_not():
  rng = np.random.default_rng(0)
  tokens = rng.integers(0, 50, size=(1, 16)).astype(np.int32)
  changed = tokens.copy()
  changed[0, 10] = (changed[0, 10] + 1) % 50
  for kind, future_matters in (("decoder", False), ("encoder", True)):
    model = build_transformer(TransformerConfig(kind=kind, **TINY))
    before, after = _logits(model, tokens), _logits(model, changed)
    assert np.allclose(before[0, :10], after[0, :10], atol=1e-6) != future_matters
    assert not np.allclose(before[0, 10:], after[0, 10:], atol=1e-6)


def test_mixed_bfloat16_keeps_float32_variables_and_logits():
  model = build_transformer(TransformerConfig(dtype_policy="mixed_bfloat16", **TINY))
  logits = model(np.zeros((2, 16), np.int32))
  assert str(logits.dtype) in ("float32", "<dtype: 'float32'>")
  assert all(v.dtype == "float32" for v in model.trainable_variables)
  assert model.blocks[0].query.compute_dtype == "bfloat16"


def test_dropout_only_in_training():
  model = build_transformer(TransformerConfig(dropout=0.5, **TINY))
  tokens = np.ones((2, 16), np.int32)
  assert np.allclose(_logits(model, tokens), _logits(model, tokens))
  assert not np.allclose(np.asarray(model(tokens, training=True)), _logits(model, tokens))


@pytest.mark.parametrize("bad, message", [
    (dict(kind="seq2seq"), "kind"),
    (dict(d_model=30, num_heads=4), "divisible"),
    (dict(num_layers=0), "num_layers"),
    (dict(activation="tanh"), "activation"),
    (dict(dtype_policy="float16"), "dtype_policy"),
])
def test_config_errors_are_clear(bad, message):
  with pytest.raises(ValueError, match=message):
    TransformerConfig(**dict(TINY, **bad))


def test_config_round_trips_through_dict():
  config = TransformerConfig(kind="decoder", head_dim=8, **TINY)
  assert TransformerConfig.from_dict(config.to_dict()) == config
  with pytest.raises(ValueError, match="unknown fields"):
    TransformerConfig.from_dict(dict(config.to_dict(), depth=3))


def test_gelu_tanh_is_the_tanh_approximation_on_both_paths():
  fused = build_transformer(TransformerConfig(activation="gelu_tanh", **TINY))
  plain = build_transformer(TransformerConfig(activation="gelu_tanh", fused_kernels=False,
                                              **TINY))
  for source, target in zip(fused.weights, plain.weights):
    target.assign(source)
  tokens = np.random.default_rng(0).integers(0, 50, (2, 16)).astype(np.int32)
  np.testing.assert_allclose(np.asarray(fused(tokens)), np.asarray(plain(tokens)), atol=1e-5)
  x = np.linspace(-4, 4, 33).astype(np.float32)
  tanh_gelu = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))
  inner = fused.blocks[0].ffn_inner
  np.testing.assert_allclose(np.asarray(inner.activation(x)), tanh_gelu, atol=1e-6)
  exact = build_transformer(TransformerConfig(**TINY)).blocks[0].ffn_inner.activation
  assert np.abs(np.asarray(exact(x)) - tanh_gelu).max() > 1e-4  # The default stays erf-GELU.
