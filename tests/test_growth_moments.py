"""AdamW moments under growth: 'map' follows the gradient, 'reset' zeroes; Deep Fusion."""

import numpy as np
import pytest

from lag_tf.growth import Candidate, apply_candidate, deep_fusion, get_operator, tree_items
from lag_tf.models import count_parameters
import growth_fixtures
from growth_fixtures import states_equal

# Function-preserving width operators whose new weights are all scaled copies: the mapped
# moments must be exactly what the grown model's own gradient gives.
GRADIENT_EXACT = [
    ("split_ffn", dict(target_d_ff=100)),
    ("split_heads", dict(target_heads=3)),
    ("widen_d_model", dict(target_d_model=64, target_heads=4, target_d_ff=128)),
    ("widen_d_model", dict(target_d_model=96, target_head_dim=32, target_d_ff=100)),
]


def _assert_trees_close(actual, expected, what):
  scale = max(np.abs(leaf).max() for _, leaf in tree_items(expected))
  expected = dict(tree_items(expected))
  for path, leaf in tree_items(actual):
    np.testing.assert_allclose(leaf, expected[path], rtol=1e-3, atol=1e-4 * scale,
                               err_msg=f"{what} {path}")


@pytest.mark.parametrize("kind,tie", growth_fixtures.VARIANTS)
@pytest.mark.parametrize("name,params", GRADIENT_EXACT, ids=lambda x: str(x))
def test_mapped_moments_equal_the_grown_models_gradient(name, params, kind, tie):
  """With m = g and v = g^2 before growth, 'map' must give m' = g' and v' = g'^2, where g' is
  the gradient of the grown model at the grown weights (same tokens, same loss)."""
  config = growth_fixtures.tiny_config(kind, tie)
  tokens = growth_fixtures.random_tokens(config)
  state = growth_fixtures.gradient_state(growth_fixtures.randomized_state(config), tokens)
  _, grown = get_operator(name).fn(config, state, np.random.default_rng(0), **params)
  reference = growth_fixtures.gradient_state(grown.without_optimizer_state(), tokens)
  _assert_trees_close(grown.first_moments, reference.first_moments, "m")
  _assert_trees_close(grown.second_moments, reference.second_moments, "v")
  assert grown.optimizer_step == state.optimizer_step


def test_depth_moments_follow_copies_and_are_zero_for_fresh_and_zeroed_weights():
  state = growth_fixtures.randomized_state(growth_fixtures.tiny_config(), with_moments=True)
  config = state.config
  _, stacked = get_operator("layer_map").fn(config, state, np.random.default_rng(0),
                                            sources=[0, 1, 1, None])
  for moments, old in ((stacked.first_moments, state.first_moments),
                       (stacked.second_moments, state.second_moments)):
    for key, value in moments["blocks"][2].items():
      np.testing.assert_array_equal(value, old["blocks"][1][key])
    assert all(not value.any() for value in moments["blocks"][3].values())
  _, zeroed = get_operator("zero_output_layers").fn(
      config, state, np.random.default_rng(0), target_layers=3, inner="copy")
  new_layer = zeroed.first_moments["blocks"][2]
  np.testing.assert_array_equal(new_layer["query/kernel"],
                                state.first_moments["blocks"][1]["query/kernel"])
  assert not new_layer["ffn_output/kernel"].any() and not new_layer["attention_output/bias"].any()
  assert not zeroed.weights["blocks"][2]["ffn_output/kernel"].any()


@pytest.mark.parametrize("policy", ["map", "reset"])
def test_optimizer_state_policies(policy):
  state = growth_fixtures.randomized_state(growth_fixtures.tiny_config(), with_moments=True)
  candidate = Candidate("c", depth="stack_layers", depth_params=dict(target_layers=4),
                        width="split_ffn", width_params=dict(target_d_ff=128),
                        optimizer_state=policy)
  grown = apply_candidate(candidate, state, np.random.default_rng(0))
  assert grown.has_optimizer_state and grown.optimizer_step == state.optimizer_step
  assert grown.params() == count_parameters(grown.config)
  moments = [leaf for tree in (grown.first_moments, grown.second_moments)
             for _, leaf in tree_items(tree)]
  if policy == "reset":
    assert not any(leaf.any() for leaf in moments)
  else:
    # Block 2 is a copy of block 0; its FFN inner columns are split over 2 copies: m/2, v/4.
    old = state.first_moments["blocks"][0]["ffn_inner/kernel"]
    np.testing.assert_allclose(grown.first_moments["blocks"][2]["ffn_inner/kernel"][:, :64],
                               old / 2)
    np.testing.assert_allclose(grown.second_moments["blocks"][2]["ffn_inner/kernel"][:, :64],
                               state.second_moments["blocks"][0]["ffn_inner/kernel"] / 4)
  # Weights do not depend on the policy.
  other = apply_candidate(
      Candidate("c", depth="stack_layers", depth_params=dict(target_layers=4), width="split_ffn",
                width_params=dict(target_d_ff=128),
                optimizer_state="map" if policy == "reset" else "reset"),
      state, np.random.default_rng(0))
  assert states_equal(other.without_optimizer_state(), grown.without_optimizer_state())


def test_a_state_without_moments_stays_without():
  state = growth_fixtures.randomized_state(growth_fixtures.tiny_config())
  grown = apply_candidate(Candidate("c", depth="duplicate_layers",
                                    depth_params=dict(target_layers=4), optimizer_state="reset"),
                          state, np.random.default_rng(0))
  assert not grown.has_optimizer_state and grown.optimizer_step is None


@pytest.mark.parametrize("kind,tie", growth_fixtures.VARIANTS)
def test_deep_fusion(kind, tie):
  config = growth_fixtures.tiny_config(kind, tie)
  one = growth_fixtures.randomized_state(config, seed=1, with_moments=True)
  two = growth_fixtures.randomized_state(config, seed=2, with_moments=True)
  tokens = growth_fixtures.random_tokens(config)
  new_config, fused = deep_fusion(config, one, np.random.default_rng(0), other=two)
  assert (new_config.d_model, new_config.num_heads, new_config.key_dim, new_config.d_ff) == (
      64, 4, 16, 128)
  assert fused.params() == count_parameters(new_config)
  # Not function-preserving for two different models, ...
  fused_logits = growth_fixtures.logits(fused, tokens)
  for model in (one, two):
    assert np.abs(fused_logits - growth_fixtures.logits(model, tokens)).max() > 1e-3
  # ... but exactly so when a model is fused with itself (checks the wiring of every tensor).
  _, self_fused = deep_fusion(config, one, np.random.default_rng(0), other=one)
  np.testing.assert_allclose(growth_fixtures.logits(self_fused, tokens),
                             growth_fixtures.logits(one, tokens), atol=1e-5, rtol=1e-5)
  # Moments: diagonal blocks halve the gradient (m/2, v/4); off-diagonal blocks are zero.
  kernel = fused.first_moments["blocks"][1]["ffn_inner/kernel"]
  np.testing.assert_allclose(kernel[32:, 64:], two.first_moments["blocks"][1]["ffn_inner/kernel"]
                             / 2)
  assert not kernel[:32, 64:].any()
  np.testing.assert_allclose(fused.second_moments["blocks"][0]["query/kernel"][:32, :32],
                             one.second_moments["blocks"][0]["query/kernel"] / 4)
  # Noise fills the off-diagonal blocks of the weights only, reproducibly.
  _, noisy = deep_fusion(config, one, np.random.default_rng(5), other=two, noise_scale=0.1)
  _, noisy_again = deep_fusion(config, one, np.random.default_rng(5), other=two,
                               noise_scale=0.1)
  assert states_equal(noisy, noisy_again)
  assert noisy.weights["blocks"][0]["value/kernel"][:32, 32:].any()
  assert not noisy.first_moments["blocks"][0]["value/kernel"][:32, 32:].any()


def test_deep_fusion_needs_a_matching_second_model():
  config = growth_fixtures.tiny_config()
  state = growth_fixtures.randomized_state(config)
  with pytest.raises(ValueError, match="second trained model"):
    deep_fusion(config, state, np.random.default_rng(0), other=None)
  with pytest.raises(ValueError, match="second model's config"):
    deep_fusion(config, state, np.random.default_rng(0),
                other=growth_fixtures.randomized_state(config.replace(d_ff=32)))
  with pytest.raises(ValueError, match="both models need optimizer moments"):
    deep_fusion(config, state, np.random.default_rng(0),
                other=growth_fixtures.randomized_state(config, with_moments=True))


def test_depth_then_fusion_grows_the_second_model_too():
  config = growth_fixtures.tiny_config(kind="decoder")
  one = growth_fixtures.randomized_state(config, 1)
  two = growth_fixtures.randomized_state(config, 2)
  candidate = Candidate("stack_fusion", depth="stack_layers", depth_params=dict(target_layers=4),
                        width="deep_fusion")
  grown = apply_candidate(candidate, one, np.random.default_rng(0), second_state=two)
  assert grown.config.num_layers == 4 and grown.config.d_model == 64
  np.testing.assert_array_equal(grown.weights["blocks"][3]["key/kernel"][32:, 32:],
                                two.weights["blocks"][1]["key/kernel"])
  with pytest.raises(ValueError, match="'stack_fusion'.*second trained model"):
    apply_candidate(candidate, one, np.random.default_rng(0))
