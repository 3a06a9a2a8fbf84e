"""AdamW with per-parameter bias correction: each parameter's moments know how old they are
(docs/design.md, "Optimizer state after growth", says why and what it changes).

Every parameter element has a *moment birth step*: the value of `iterations` when its moments
started (0 for a model trained from scratch, the growth step for fresh moments). Bias correction
uses the age `iterations + 1 - birth`; the learning-rate schedule keeps `iterations`. With every
birth at 0 the update is stock AdamW's up to float32 rounding (here 1 - beta^t is computed
without stock AdamW's cancellation, see update_step).

Why births (an extra optimizer slot per parameter) and not per-variable offsets: width growth
pads a carried kernel with fresh units, so one variable holds moments of different ages; a
slot of the variable's shape is exact for every operator, maps through growth like a moment
(copies keep their age, fresh units get age 0; `ModelState.moment_ages`), and is saved in the
optimizer's checkpoint with the moments, also under tf.distribute. Births rather than ages:
they do not change as training runs, so the step writes nothing extra.

Checkpoints written by stock AdamW (`bias_correction='global'`, or from before per-parameter
correction) lack the births: `stock_adamw_layout` restores them, and
`every_moment_born_at_step_0` completes the state: stock AdamW's own correction, so the resumed
run continues with the updates it was making.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

BIAS_CORRECTIONS = ("per_parameter", "global")


class GrowthAdamW(keras.optimizers.AdamW):
  """`keras.optimizers.AdamW` whose bias correction counts each parameter's own moment age."""

  def build(self, var_list):
    if self.built:
      return
    super().build(var_list)
    if self.amsgrad:
      raise ValueError("GrowthAdamW does not support amsgrad")
    self._moment_births = self.add_optimizer_variables(var_list, "moment_birth")

  def moment_births(self, variable):
    """The birth-step slot of `variable` (same shape, float32)."""
    return self._moment_births[self._get_variable_index(variable)]

  def stock_adamw_layout(self) -> tf.train.Checkpoint:
    """This optimizer's variables under the names a stock AdamW of the same variables saves
    them with: build() appends the births after stock AdamW's own slots, so the other
    variables keep stock's positions in the optimizer's variable list."""
    births = {id(birth) for birth in self._moment_births}
    return tf.train.Checkpoint(
        _iterations=self._iterations,
        _trainable_variables=list(self._trainable_variables),
        _variables=[v for v in self.variables if id(v) not in births])

  def every_moment_born_at_step_0(self) -> None:
    for birth in self._moment_births:
      birth.assign(np.zeros(birth.shape, np.float32))

  def update_step(self, gradient, variable, learning_rate):
    # keras 3.15 Adam.update_step, with the step powers taken per element at the moment age.
    dtype = variable.dtype
    lr = ops.cast(learning_rate, dtype)
    gradient = ops.cast(gradient, dtype)
    index = self._get_variable_index(variable)
    m, v, birth = self._momentums[index], self._velocities[index], self._moment_births[index]
    # Ages in float32 whatever the variable's dtype (slots of bfloat16 variables would round
    # births above 256; lag_tf's policies keep float32 variables).
    age = ops.subtract(ops.cast(self.iterations + 1, "float32"), ops.cast(birth, "float32"))
    # 1 - beta^age as -expm1(age * log(beta)): no cancellation when age is small (stock
    # AdamW's 1 - beta_2^t loses ~1e-5 relative at t < 10 in float32).
    alpha = ops.cast(ops.sqrt(_one_minus_power(self.beta_2, age))
                     / _one_minus_power(self.beta_1, age), dtype) * lr
    self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
    self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
    self.assign_sub(variable, ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v),
                                                                          self.epsilon)))


def stock_over_fresh_update(growth_step: int, steps_after, beta_1: float = 0.9,
                            beta_2: float = 0.999) -> np.ndarray:
  """Stock AdamW's update of a parameter whose moments were reset to zero at `growth_step`,
  over a fresh Adam's (GrowthAdamW's), `steps_after` (1, 2, ...) steps after the growth.

  Both hold the same moments (zero at the growth step, then the same gradients) and the same
  epsilon, so their updates differ only by Adam's correction sqrt(1 - beta_2^t) / (1 - beta_1^t)
  at stock's step t = growth_step + steps_after against the fresh t = steps_after: the ratio
  holds whatever the gradients (tests/test_optimizer.py checks it against keras' AdamW).
  """
  steps_after = np.asarray(steps_after, np.float64)

  def correction(t):
    return np.sqrt(-np.expm1(t * math.log(beta_2))) / -np.expm1(t * math.log(beta_1))
  return correction(growth_step + steps_after) / correction(steps_after)


def _one_minus_power(beta: float, exponent):
  return -ops.expm1(exponent * math.log(beta))


def adamw(bias_correction: str = "per_parameter", **kwargs) -> keras.optimizers.AdamW:
  """GrowthAdamW ('per_parameter', the default) or stock AdamW ('global': one step counter for
  every parameter, the behaviour before per-parameter correction; kept to reproduce old runs)."""
  if bias_correction not in BIAS_CORRECTIONS:
    raise ValueError(f"make_optimizer.bias_correction={bias_correction!r}: expected one of "
                     f"{BIAS_CORRECTIONS}")
  cls = GrowthAdamW if bias_correction == "per_parameter" else keras.optimizers.AdamW
  return cls(**kwargs)
