"""Per-parameter bias correction (GrowthAdamW): stock AdamW without growth, a fresh AdamW for
fresh moments after growth, the base model's own updates for carried moments, and resume."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from doc_fixtures import DESIGN, read
from lag_tf.growth import Candidate, ModelState, apply_candidate, tree_items, tree_map
from lag_tf.models import build_transformer
from lag_tf.training import keras_io
from lag_tf.training import optimizers
from lag_tf.training.optimizers import GrowthAdamW
from lag_tf.training.trainer import make_optimizer
import growth_fixtures

LEARNING_RATE = 3e-3  # Constant: the comparisons isolate bias correction from the schedule.


def _config(kind="encoder"):
  return growth_fixtures.tiny_config(kind, num_layers=1)  # Eager optimizer steps cost per variable.


def _model(config, state=None, bias_correction="per_parameter", seed=0):
  keras.utils.set_random_seed(seed)
  model = build_transformer(config)
  optimizer = make_optimizer(LEARNING_RATE, bias_correction=bias_correction)
  optimizer.build(model.trainable_variables)
  if state is not None:
    keras_io.assign_state(state, model, optimizer if state.has_optimizer_state else None)
  return model, optimizer


def _gradients(model, step, seed=0):
  """Deterministic pseudo-gradients keyed by each variable's path in the weight tree, so two
  models with the same layout receive the same gradient for the same parameter."""
  grads = {}
  for path, variable in tree_items(model.weight_tree()):
    rng = np.random.default_rng([seed, step, sum(map(ord, path)), len(path)])
    grads[id(variable)] = tf.constant(
        rng.standard_normal(variable.shape).astype(np.float32) * 0.1)
  return [grads[id(v)] for v in model.trainable_variables]


def _paths(model):
  """Weight-tree paths in the order of `model.trainable_variables`."""
  path_of = {id(v): path for path, v in tree_items(model.weight_tree())}
  return [path_of[id(v)] for v in model.trainable_variables]


def _weights(model):
  return {path: v.numpy().copy() for path, v in tree_items(model.weight_tree())}


def _apply(model, optimizer, gradients):
  """One optimizer step; returns the update of every weight, by path."""
  before = _weights(model)
  optimizer.apply_gradients(zip(gradients, model.trainable_variables))
  after = _weights(model)
  return {path: after[path] - before[path] for path in after}


def _trained_base(config, step=30):
  """A base model's state after `step` steps: non-trivial weights and moments (m, v > 0)."""
  state = growth_fixtures.randomized_state(config, with_moments=True)
  return state.replace(second_moments=tree_map(lambda v: v * 1e-3, state.second_moments),
                       first_moments=tree_map(lambda m: m * 1e-2, state.first_moments),
                       optimizer_step=step, moment_ages=None)


def test_without_growth_updates_equal_stock_adamw():
  config = _config()
  ours, our_opt = _model(config)
  stock, stock_opt = _model(config, bias_correction="global")
  assert isinstance(our_opt, GrowthAdamW) and not isinstance(stock_opt, GrowthAdamW)
  for step in range(20):
    ours_update = _apply(ours, our_opt, _gradients(ours, step))
    stock_update = _apply(stock, stock_opt, _gradients(stock, step))
    for path, update in ours_update.items():
      # Stock AdamW's float32 1 - beta_2^t is off by up to ~1e-5 relative at small t (ours is
      # not, see optimizers.py): 1e-6 absolute on updates of ~1e-3, 2e-5 relative.
      np.testing.assert_allclose(update, stock_update[path], rtol=2e-5, atol=1e-6,
                                 err_msg=f"step {step} {path}")


def test_update_matches_adamw_in_float64():
  """One variable, 12 steps, against the AdamW formulas in float64 (no weight decay: a bias)."""
  variable = keras.Variable(np.full((5,), 0.5, np.float32), name="bias")
  optimizer = make_optimizer(LEARNING_RATE)
  optimizer.build([variable])
  optimizer.moment_births(variable).assign(np.array([0, 0, 4, 4, 9], np.float32))
  optimizer.iterations.assign(9)
  rng = np.random.default_rng(0)
  w, m, v = np.full(5, 0.5), np.zeros(5), np.zeros(5)
  ages = np.array([9, 9, 5, 5, 0], np.float64)  # Elements 0-1 had zero moments at step 9 too.
  for _ in range(12):
    g = rng.standard_normal(5)
    optimizer.apply_gradients([(tf.constant(g, tf.float32), variable)])
    ages += 1
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    w -= (LEARNING_RATE * np.sqrt(1 - 0.999 ** ages) / (1 - 0.9 ** ages)) * m / (np.sqrt(v) +
                                                                                  1e-6)
    np.testing.assert_allclose(variable.numpy(), w, rtol=0, atol=2e-7)


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_after_reset_every_update_equals_a_fresh_adamw(kind):
  config = _config(kind)
  base = _trained_base(config)
  grown = apply_candidate(Candidate("stack_reset", depth="stack_layers",
                                    depth_params={"target_layers": 2}, optimizer_state="reset"),
                          base, np.random.default_rng(0))
  assert grown.optimizer_step == 30
  ours, our_opt = _model(grown.config, grown)
  # A fresh AdamW: same weights, zero moments, step counter at 0 (GrowthAdamW with no growth is
  # stock AdamW, tests above; comparing with it keeps stock's float32 rounding out of the way).
  fresh, fresh_opt = _model(grown.config, grown.without_optimizer_state())
  for step in range(10):
    gradients = _gradients(ours, step, seed=2)
    ours_update = _apply(ours, our_opt, gradients)
    fresh_update = _apply(fresh, fresh_opt, gradients)
    for path, update in ours_update.items():
      np.testing.assert_allclose(update, fresh_update[path], rtol=1e-6, atol=1e-9,
                                 err_msg=f"step {step} {path}")
  assert int(our_opt.iterations.numpy()) == 40  # The schedule's step continued.


def test_stock_adamw_after_reset_steps_as_the_formulas_say():
  """The bug this fixes, pinned: under one step counter, fresh moments at step 300 step up to
  ~3.4x too far, exactly as stock_over_fresh_update computes it from Adam's formulas."""
  config = _config()
  base = _trained_base(config, step=300)
  grown = apply_candidate(Candidate("reset", depth="stack_layers",
                                    depth_params={"target_layers": 2}, optimizer_state="reset"),
                          base, np.random.default_rng(0))
  stock, stock_opt = _model(grown.config, grown, "global")
  fresh, fresh_opt = _model(grown.config, grown.without_optimizer_state(), "global")
  path = "blocks/0/ffn_inner/kernel"
  ratios = []
  for step in range(10):
    gradients = _gradients(stock, step, seed=3)
    stock_update = _apply(stock, stock_opt, gradients)
    fresh_update = _apply(fresh, fresh_opt, gradients)
    ratios.append(np.abs(stock_update[path]).sum() / np.abs(fresh_update[path]).sum())
  # rtol: stock AdamW computes 1 - beta_2^t in float32 (optimizers.py), off by ~1e-4 here.
  np.testing.assert_allclose(ratios, optimizers.stock_over_fresh_update(300, range(1, 11)),
                             rtol=5e-4)
  assert 3.3 < ratios[-1] < 3.4


def test_stock_adamw_steps_shorter_after_early_growth_and_up_to_6x_after_late_growth():
  """docs/design.md's figures ("Optimizer state after growth"; python
  benchmarks/adam_reset_steps.py), and its table is these ratios."""
  ratio = optimizers.stock_over_fresh_update
  assert np.round(ratio(25, [1, 10]), 2).tolist() == [0.54, 1.24]
  assert np.round(ratio(2000, [1, 10, 100]), 2).tolist() == [2.94, 6.08, 3.04]
  assert np.round(ratio(10000, [1, 10, 100]), 2).tolist() == [3.16, 6.53, 3.24]
  assert np.round(ratio(2000, 1000), 2) == 1.23
  rows = [f"| {t} | " + " | ".join(f"{r:.2f}x" for r in ratio(t, [1, 10, 100, 1000])) + " |"
          for t in (25, 2000, 10000)]
  assert "\n".join(rows) in read(DESIGN)


def test_after_map_stacking_copies_move_like_their_source_and_fresh_layers_like_fresh_adam():
  config = _config()
  base_state = _trained_base(config)
  # Block 1 copies block 0; block 2 is fresh (random init, zero moments).
  grown = apply_candidate(Candidate("map", depth="layer_map",
                                    depth_params={"sources": [0, 0, None]}),
                          base_state, np.random.default_rng(0))
  ages = grown.moment_ages["blocks"]
  assert all(np.all(leaf == 30) for leaf in ages[1].values())
  assert all(np.all(leaf == 0) for leaf in ages[2].values())
  ours, our_opt = _model(grown.config, grown)
  base, base_opt = _model(config, base_state)  # The source, continuing without growth.
  fresh, fresh_opt = _model(grown.config, grown.without_optimizer_state())
  for step in range(10):
    gradients = _gradients(ours, step, seed=4)
    ours_update = _apply(ours, our_opt, gradients)
    fresh_update = _apply(fresh, fresh_opt, gradients)
    # The source continues on the gradients its image receives: block 0 gets block 1's.
    by_path = dict(zip(_paths(ours), gradients))
    base_update = _apply(base, base_opt, [by_path[p.replace("blocks/0/", "blocks/1/")]
                                          for p in _paths(base)])
    for key in ages[1]:
      np.testing.assert_allclose(ours_update[f"blocks/1/{key}"], base_update[f"blocks/0/{key}"],
                                 rtol=1e-6, atol=1e-9, err_msg=f"step {step} copied {key}")
      np.testing.assert_allclose(ours_update[f"blocks/2/{key}"], fresh_update[f"blocks/2/{key}"],
                                 rtol=1e-6, atol=1e-9, err_msg=f"step {step} fresh {key}")


def test_width_padding_gives_fresh_units_age_zero_inside_a_carried_kernel():
  state = growth_fixtures.randomized_state(_config(), with_moments=True)
  grown = apply_candidate(Candidate("pad", width="random_pad",
                                    width_params={"target_d_ff": 96}), state,
                          np.random.default_rng(0))
  inner = grown.moment_ages["blocks"][0]["ffn_inner/kernel"]
  assert inner.shape == (32, 96)
  assert np.all(inner[:, :64] == 7) and np.all(inner[:, 64:] == 0)
  ours, our_opt = _model(grown.config, grown)
  births = our_opt.moment_births(ours.weight_tree()["blocks"][0]["ffn_inner/kernel"]).numpy()
  assert np.all(births[:, :64] == 0) and np.all(births[:, 64:] == 7)
  round_trip = keras_io.state_from_model(ours, our_opt)
  np.testing.assert_array_equal(round_trip.moment_ages["blocks"][0]["ffn_inner/kernel"], inner)


def test_a_checkpoint_taken_mid_probe_resumes_with_the_same_updates(tmp_path):
  config = _config()
  grown = apply_candidate(Candidate("zero", depth="zero_output_layers",
                                    depth_params={"target_layers": 2, "position": "top"}),
                          _trained_base(config), np.random.default_rng(0))
  model, optimizer = _model(grown.config, grown)
  for step in range(3):
    _apply(model, optimizer, _gradients(model, step, seed=5))
  path = tf.train.Checkpoint(model=model, optimizer=optimizer).save(
      os.path.join(tmp_path, "ckpt"))
  continued = [_apply(model, optimizer, _gradients(model, step, seed=5)) for step in range(3, 6)]

  resumed, resumed_opt = _model(grown.config, seed=9)  # Other initial weights, births zero.
  tf.train.Checkpoint(model=resumed, optimizer=resumed_opt).restore(
      path).assert_existing_objects_matched()
  births = resumed_opt.moment_births(resumed.weight_tree()["blocks"][1]["query/kernel"]).numpy()
  assert np.all(births == 30)  # Restored, not the zeros it was built with.
  for step, expected in zip(range(3, 6), continued):
    update = _apply(resumed, resumed_opt, _gradients(resumed, step, seed=5))
    for key, value in update.items():
      np.testing.assert_array_equal(value, expected[key], err_msg=f"step {step} {key}")


def test_moment_ages_are_checked_and_default_to_the_step():
  state = growth_fixtures.randomized_state(growth_fixtures.tiny_config(), with_moments=True)
  assert all(np.all(age == 7) for _, age in tree_items(state.moment_ages))
  with pytest.raises(ValueError, match="moment_ages given without"):
    ModelState(state.config, state.weights, moment_ages=state.moment_ages)
  bad = tree_map(np.copy, state.moment_ages)
  bad["blocks"][0]["query/kernel"] = np.zeros((3, 3), np.float32)
  with pytest.raises(ValueError, match="moment_ages"):
    state.replace(moment_ages=bad)
  with pytest.raises(ValueError, match="bias_correction"):
    make_optimizer(1e-3, bias_correction="per_layer")
