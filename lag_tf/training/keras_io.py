"""The two Keras adapters: Keras `Transformer` (+ AdamW) <-> numpy `ModelState`.

AdamW (keras 3.15, keras/src/optimizers/adam.py) keeps one momentum and one velocity variable
per trainable variable, in the lists `_momentums` / `_velocities`, at the index
`optimizer._get_variable_index(variable)` (a map built by `optimizer.build(variables)` and keyed
by the variable's identity, also under tf.distribute). `iterations` is the step counter used by
learning-rate schedules (and by stock AdamW's bias correction); `GrowthAdamW` also keeps a
moment-birth slot per variable, written from and read into `ModelState.moment_ages`. A
`LossScaleOptimizer` is unwrapped to its inner optimizer. It lives in training/, not growth/
(docs/design.md, "Layers"): it knows the training optimizers (GrowthAdamW).
"""

from __future__ import annotations

from typing import Dict, Tuple

import keras
import numpy as np
from absl import logging

from lag_tf.growth.state import ModelState, tree_items, tree_map
from lag_tf.training.optimizers import GrowthAdamW

_UNSUPPORTED = ("amsgrad", "use_ema")


def _adam(optimizer):
  optimizer = getattr(optimizer, "inner_optimizer", optimizer)
  if not isinstance(optimizer, keras.optimizers.Adam):
    raise ValueError(f"ModelState: {type(optimizer).__name__} is not an Adam-family optimizer; "
                     "only Adam/AdamW moments can be carried")
  for option in _UNSUPPORTED:
    if getattr(optimizer, option, False):
      raise ValueError(f"ModelState: AdamW with {option}=True has extra state that ModelState "
                       "does not carry")
  if getattr(optimizer, "gradient_accumulation_steps", None):
    raise ValueError("ModelState: gradient accumulation state is not carried")
  return optimizer


def _check_covers_trainables(model, tree) -> None:
  in_tree = {id(v) for _, v in tree_items(tree)}
  trainable = {id(v) for v in model.trainable_variables}
  if in_tree != trainable:
    raise ValueError(f"ModelState: model.weight_tree() covers {len(in_tree)} variables but the "
                     f"model has {len(trainable)} trainable ones")


def _moment_variables(optimizer, tree) -> Tuple[Dict, Dict]:
  # pylint: disable=protected-access
  index, momentum_list, velocity_list = (optimizer._get_variable_index, optimizer._momentums,
                                         optimizer._velocities)
  # pylint: enable=protected-access
  try:
    momentums = tree_map(lambda v: momentum_list[index(v)], tree)
    velocities = tree_map(lambda v: velocity_list[index(v)], tree)
  except KeyError as error:
    raise ValueError("ModelState: the optimizer was built for other variables than this "
                     "model's (call optimizer.build(model.trainable_variables))") from error
  return momentums, velocities


def _to_numpy(variable) -> np.ndarray:
  return np.array(variable.numpy(), copy=True)


def state_from_model(model, optimizer=None) -> ModelState:
  """Copies the model's weights (and the built AdamW's moments and step) into numpy."""
  tree = model.weight_tree()
  _check_covers_trainables(model, tree)
  weights = tree_map(_to_numpy, tree)
  if optimizer is None:
    return ModelState(model.config, weights)
  adam = _adam(optimizer)
  if not adam.built:
    raise ValueError("state_from_model: the optimizer is not built yet (it has no moments)")
  momentums, velocities = _moment_variables(adam, tree)
  step = int(np.asarray(adam.iterations.numpy()))
  ages = None  # Stock AdamW: every moment is as old as the step counter.
  if isinstance(adam, GrowthAdamW):
    ages = tree_map(lambda v: np.float32(step) - _to_numpy(adam.moment_births(v)), tree)
  return ModelState(model.config, weights,
                    first_moments=tree_map(_to_numpy, momentums),
                    second_moments=tree_map(_to_numpy, velocities),
                    optimizer_step=step, moment_ages=ages)


def _assign(variable, value: np.ndarray, path: str) -> None:
  if tuple(variable.shape) != tuple(value.shape):
    raise ValueError(f"assign_state: {path} has shape {tuple(value.shape)}, the model "
                     f"variable has {tuple(variable.shape)}")
  variable.assign(np.asarray(value, dtype=variable.dtype))


def _assign_tree(variables, values, what: str) -> None:
  by_path = dict(tree_items(values))
  for path, variable in tree_items(variables):
    if path not in by_path:
      raise ValueError(f"assign_state: {what} has no leaf {path}")
    _assign(variable, by_path[path], f"{what}/{path}")


def assign_state(state: ModelState, model, optimizer=None) -> None:
  """Writes `state` into `model` (and AdamW's moments and step); configs must match.

  An unbuilt optimizer is built on `model.trainable_variables` first.
  """
  if model.config != state.config:
    raise ValueError(f"assign_state: state config {state.config} != model config "
                     f"{model.config}")
  tree = model.weight_tree()
  _check_covers_trainables(model, tree)
  _assign_tree(tree, state.weights, "weights")
  if optimizer is None:
    return
  if not state.has_optimizer_state:
    raise ValueError("assign_state: an optimizer was given but the state has no "
                     "optimizer moments")
  adam = _adam(optimizer)
  if not adam.built:
    adam.build(model.trainable_variables)
  momentums, velocities = _moment_variables(adam, tree)
  _assign_tree(momentums, state.first_moments, "first_moments")
  _assign_tree(velocities, state.second_moments, "second_moments")
  step = np.float32(state.optimizer_step)
  if isinstance(adam, GrowthAdamW):
    births = tree_map(adam.moment_births, tree)
    _assign_tree(births, tree_map(lambda age: step - age, state.moment_ages), "moment_births")
  elif any(np.any(age != step) for _, age in tree_items(state.moment_ages)):
    logging.warning("assign_state: %s has one step counter for all parameters; moments "
                    "younger than step %d get the bias correction of step %d (use "
                    "make_optimizer.bias_correction='per_parameter')", type(adam).__name__,
                    state.optimizer_step, state.optimizer_step)
  adam.iterations.assign(state.optimizer_step)
