"""Every growth operator on tiny encoder/decoder, tied/untied models: shapes, parameter counts,
declared function preservation (exact logits, or logits that do change), seeded noise, purity."""

import numpy as np
import pytest

from lag_tf.growth import ModelState, get_operator, operators, tree_items
from lag_tf.models import count_parameters
import growth_fixtures
from growth_fixtures import states_equal

# (case id, operator, params) on the tiny 2-layer model (d_model 32, 2 heads, d_ff 64).
CASES = [
    ("layer_map", "layer_map", dict(sources=[0, None, 1, 0])),
    ("stack", "stack_layers", dict(target_layers=4)),
    ("stack_partial", "stack_layers", dict(target_layers=5)),
    ("duplicate", "duplicate_layers", dict(target_layers=4)),
    ("copy_top", "copy_top_layers", dict(target_layers=3)),
    ("midas", "copy_middle_block", dict(target_layers=4, block_size=1)),
    ("copy_block", "copy_block", dict(target_layers=4, start=0, stop=1, insert_at=2)),
    ("random_interleave", "random_layers", dict(target_layers=4, position="interleave")),
    ("random_bottom", "random_layers", dict(target_layers=3, position="bottom")),
    ("zero_top", "zero_output_layers", dict(target_layers=4)),
    ("zero_interleave_copy", "zero_output_layers",
     dict(target_layers=4, position="interleave", inner="copy")),
    ("zero_middle_copy", "zero_output_layers",
     dict(target_layers=3, position="middle", inner="copy")),
    ("zero_bottom", "zero_output_layers", dict(target_layers=3, position="bottom")),
    ("split_ffn", "split_ffn", dict(target_d_ff=100)),
    ("split_heads", "split_heads", dict(target_heads=3)),
    ("widen", "widen_d_model", dict(target_d_model=64)),
    ("widen_all", "widen_d_model", dict(target_d_model=64, target_heads=4, target_d_ff=128)),
    ("widen_head_dim", "widen_d_model",
     dict(target_d_model=96, target_head_dim=32, target_d_ff=100)),
    ("aki", "bert2bert_aki", dict(target_d_model=64, target_heads=4, target_d_ff=128)),
    ("aki_uneven", "bert2bert_aki", dict(target_d_model=48, target_heads=3, target_d_ff=80)),
    ("zero_pad", "zero_pad", dict(target_heads=3, target_d_ff=80)),
    ("random_pad", "random_pad", dict(target_d_model=48, target_heads=3, target_d_ff=80)),
]
CASE_IDS = [case[0] for case in CASES]
# Cases whose new weights are all fresh: nothing is a copy, so noise has nothing to break.
NOISE_FREE = {"random_interleave", "random_bottom", "zero_top", "zero_bottom", "zero_pad",
              "random_pad"}
# Non-preserving operators must change the logits by more than this (so the check can fail).
CHANGED = 1e-3


def _grow(name, params, state, seed=0, noise_scale=0.0):
  op = get_operator(name)
  return op.fn(state.config, state, np.random.default_rng(seed), noise_scale=noise_scale,
               **params)


def test_every_registered_operator_has_a_case():
  covered = {name for _, name, _ in CASES} | {"deep_fusion"}  # Fusion: test_growth_fusion.py.
  assert covered == set(operators())


@pytest.mark.parametrize("kind,tie", growth_fixtures.VARIANTS)
@pytest.mark.parametrize("case_id,name,params", CASES, ids=CASE_IDS)
def test_shapes_params_and_declared_function_preservation(case_id, name, params, kind, tie):
  config = growth_fixtures.tiny_config(kind, tie)
  state = growth_fixtures.randomized_state(config)
  op = get_operator(name)
  tokens = growth_fixtures.random_tokens(config)
  before = growth_fixtures.logits(state, tokens)
  for noise_scale in (0.0, 0.05):
    new_config, grown = _grow(name, params, state, noise_scale=noise_scale)
    assert new_config == grown.config == op.target_config(config, **params)
    assert grown.params() == count_parameters(new_config)
    after = growth_fixtures.logits(grown, tokens)  # Assigning checks every shape against the model.
    assert after.shape == before.shape
    if op.function_preserving:
      np.testing.assert_allclose(after, before, atol=1e-5, rtol=1e-5,
                                 err_msg=f"{case_id} noise={noise_scale}")
    else:
      assert np.abs(after - before).max() > CHANGED, f"{case_id} noise={noise_scale}"


@pytest.mark.parametrize("case_id,name,params", CASES, ids=CASE_IDS)
def test_operators_are_pure_and_seeded(case_id, name, params):
  state = growth_fixtures.randomized_state(growth_fixtures.tiny_config(), with_moments=True)
  original = state.copy()
  _, first = _grow(name, params, state, seed=3, noise_scale=0.1)
  _, again = _grow(name, params, state, seed=3, noise_scale=0.1)
  _, other_seed = _grow(name, params, state, seed=4, noise_scale=0.1)
  _, quiet = _grow(name, params, state, seed=3, noise_scale=0.0)
  assert states_equal(state, original), "the operator modified its input"
  assert states_equal(first, again)
  assert not states_equal(first, other_seed)
  if case_id in NOISE_FREE:
    assert states_equal(first, quiet), "noise changed an operator that has nothing to perturb"
  else:
    assert not states_equal(first, quiet), "noise_scale had no effect"
  # Noise and fresh draws touch weights only; moments depend on the seed only via random maps.
  assert first.optimizer_step == state.optimizer_step == 7
  for (_, m_noisy), (_, m_quiet) in zip(tree_items(first.first_moments),
                                        tree_items(quiet.first_moments)):
    np.testing.assert_array_equal(m_noisy, m_quiet)


def test_zero_sum_noise_breaks_symmetry_but_keeps_the_split_sum():
  state = growth_fixtures.randomized_state(growth_fixtures.tiny_config(d_ff=4))
  _, grown = _grow("split_ffn", dict(target_d_ff=8), state, noise_scale=0.1)
  old = state.weights["blocks"][0]["ffn_output/kernel"]
  new = grown.weights["blocks"][0]["ffn_output/kernel"]
  inner = grown.weights["blocks"][0]["ffn_inner/kernel"]
  for unit in range(4):  # 4 -> 8 duplicates every neuron once: unit u and 4 + u.
    np.testing.assert_array_equal(inner[:, unit], inner[:, 4 + unit])
    np.testing.assert_allclose(new[unit] + new[4 + unit], old[unit], atol=1e-6)
    assert np.abs(new[unit] - new[4 + unit]).max() > 1e-3


@pytest.mark.parametrize("name,params,message", [
    ("stack_layers", dict(target_layers=2), "larger than num_layers=2"),
    ("stack_layers", dict(target_layers=4.0), "must be an integer"),
    ("copy_top_layers", dict(target_layers=5), "at most 2"),
    ("layer_map", dict(sources=[0, 2]), "layer index 2 out of range for a 2-layer model"),
    ("copy_block", dict(target_layers=4, start=-3, stop=1), "start -3 out of range"),
    ("copy_block", dict(target_layers=5, start=0, stop=2), "not a whole number of copies"),
    ("copy_block", dict(target_layers=4, start=0, stop=1, insert_at=3), "insert_at 3"),
    ("copy_middle_block", dict(target_layers=4, block_size=3), "block_size=3"),
    ("random_layers", dict(target_layers=4, position="side"), "position='side'"),
    ("zero_output_layers", dict(target_layers=4, inner="ones"), "inner='ones'"),
    ("split_ffn", dict(target_d_ff=32), "cannot be reached from 64"),
    ("split_heads", dict(target_heads=2), "no target width is larger"),
    ("widen_d_model", dict(target_d_model=48), "must be a multiple of 32"),
    ("widen_d_model", dict(target_d_model=64, target_head_dim=24), "multiple of 16"),
])
def test_impossible_targets_raise_one_line_errors(name, params, message):
  config = growth_fixtures.tiny_config()
  op = get_operator(name)
  with pytest.raises(ValueError, match=message) as shape_error:
    op.target_config(config, **params)
  assert "\n" not in str(shape_error.value)
  with pytest.raises(ValueError, match=message):  # The operator itself checks the same.
    op.fn(config, ModelState.init(config, np.random.default_rng(0)), np.random.default_rng(0),
          **params)
