"""ModelState: shapes and counts from the config, and the exact Keras (+ AdamW) round trip."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from lag_tf.growth import ModelState, tree_items, weight_shapes
from lag_tf.models import build_transformer, count_parameters
from lag_tf.training import keras_io
import growth_fixtures
from growth_fixtures import states_equal


@pytest.mark.parametrize("kind,tie", growth_fixtures.VARIANTS)
def test_weight_shapes_match_the_model_and_params_match_count_parameters(kind, tie):
  config = growth_fixtures.tiny_config(kind, tie, num_heads=3, head_dim=8)
  model = growth_fixtures.model_for(config)
  model_shapes = {path: tuple(v.shape) for path, v in tree_items(model.weight_tree())}
  assert list(tree_items(weight_shapes(config))) == list(model_shapes.items())  # Same order.
  state = ModelState.init(config, np.random.default_rng(0))
  assert state.params() == count_parameters(config) == model.count_params()


def test_state_rejects_wrong_shapes_and_half_optimizer_state():
  config = growth_fixtures.tiny_config()
  state = growth_fixtures.randomized_state(config)
  bad = state.copy().weights
  bad["blocks"][1]["ffn_inner/kernel"] = np.zeros((32, 65), np.float32)
  with pytest.raises(ValueError, match=r"blocks/1/ffn_inner/kernel.*\(32, 65\)"):
    ModelState(config, bad)
  with pytest.raises(ValueError, match="together"):
    ModelState(config, state.weights, first_moments=state.weights)
  with pytest.raises(ValueError, match="missing leaves"):
    ModelState(config.replace(num_layers=3), state.weights)


def test_tree_map_copy_and_equals():
  state = growth_fixtures.randomized_state(growth_fixtures.tiny_config(), with_moments=True)
  doubled = state.tree_map(lambda x: 2 * x)
  assert np.array_equal(doubled.second_moments["head"]["output/bias"],
                        2 * state.second_moments["head"]["output/bias"])
  copy = state.copy()
  assert states_equal(copy, state) and not states_equal(doubled, state)
  copy.weights["embeddings"]["token"][0, 0] += 1.0
  assert not states_equal(copy, state)  # The copy owns its arrays.
  assert state.with_zero_optimizer_state(3).optimizer_step == 3
  assert not state.without_optimizer_state().has_optimizer_state
  assert state.nbytes() == 4 * 4 * state.params()  # Weights, m, v, moment ages.
  np.testing.assert_array_equal(doubled.moment_ages["blocks"][0]["query/kernel"], 7)


def _adamw():
  optimizer = keras.optimizers.AdamW(learning_rate=1e-2, weight_decay=0.01)
  optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
  return optimizer


def _train_steps(model, optimizer, steps, seed=0):
  rng = np.random.default_rng(seed)
  config = model.config
  for _ in range(steps):
    tokens = rng.integers(0, config.vocab_size, size=(2, config.max_len)).astype(np.int32)
    with tf.GradientTape() as tape:
      logits = model(tokens, training=True)
      loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
          tokens, logits, from_logits=True))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))


@pytest.mark.parametrize("kind,tie", [("encoder", True), ("decoder", False)])
def test_round_trip_is_bitwise_with_adamw_moments_and_training_continues_identically(kind, tie):
  config = growth_fixtures.tiny_config(kind, tie)
  model, optimizer = build_transformer(config), _adamw()
  _train_steps(model, optimizer, steps=2)
  state = keras_io.state_from_model(model, optimizer)
  assert state.optimizer_step == 2
  assert all(np.any(leaf != 0) for _, leaf in tree_items(state.second_moments))

  twin, twin_optimizer = build_transformer(config), _adamw()  # Unbuilt: assign_state builds it.
  keras_io.assign_state(state, twin, twin_optimizer)
  assert states_equal(keras_io.state_from_model(twin, twin_optimizer), state)

  # The moments landed on the right variables: one more identical step gives identical models.
  _train_steps(model, optimizer, steps=1, seed=5)
  _train_steps(twin, twin_optimizer, steps=1, seed=5)
  after, twin_after = keras_io.state_from_model(model, optimizer), keras_io.state_from_model(
      twin, twin_optimizer)
  assert states_equal(twin_after, after)


def test_adapters_reject_mismatches():
  config = growth_fixtures.tiny_config()
  state = growth_fixtures.randomized_state(config)
  with pytest.raises(ValueError, match="config"):
    keras_io.assign_state(state, growth_fixtures.model_for(config.replace(d_ff=32)))
  with pytest.raises(ValueError, match="no optimizer moments"):
    keras_io.assign_state(state, growth_fixtures.model_for(config), _adamw())
  with pytest.raises(ValueError, match="not built"):
    keras_io.state_from_model(growth_fixtures.model_for(config), _adamw())
  with pytest.raises(ValueError, match="Adam-family"):
    keras_io.state_from_model(growth_fixtures.model_for(config), keras.optimizers.SGD())
