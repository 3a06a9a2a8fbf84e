"""The compiled step engine: one model, its optimizer, the traced train and eval loops, and
the state they move (Orbit's inner trainer; the loop around it is `trainer.Trainer`). How a
step computes one device's update under every strategy: docs/design.md, "Data flow of a run",
step 4.

The engine knows nothing of directories, metrics or cadence. Its state enters and leaves as a
`ModelState` and ints (`global_step`, `examples_seen`); its `checkpoint` is the trackable a
loop saves and restores. Building and tracing are the expensive part, so one engine serves
many runs of the same shape (the candidates of a LAG pool): `reinitialize` returns it to its
state as built, without building or tracing again, and the next run's loop takes it over.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Callable, Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from lag_tf.growth.state import ModelState
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import flops_per_token
from lag_tf.training import checkpoints
from lag_tf.training import keras_io
from lag_tf.training import memory
from lag_tf.training import optimizers


class StepEngine:
  """A model and its optimizer with compiled train and eval loops (see the module doc).

  Args: the `Trainer`'s of the same names (trainer.Trainer documents them; its gin settings
  are how users set them), with jit_compile resolved ('auto' is the caller's), loss_fn required,
  and mask_probability: the masked LM's share of predicted positions (None for a decoder;
  `trainer.mask_probability_of`): the memory check and the FLOP count (models/flops).
  """

  def __init__(self, model_config: TransformerConfig, data, strategy: tf.distribute.Strategy,
               global_batch_size: int, eval_batches: int, grad_clip_norm: Optional[float],
               jit_compile: bool, seed: int, optimizer_fn: Callable, model_fn: Callable,
               loss_fn: Callable, mask_probability: Optional[float]):
    # The arguments were checked by the Trainer that builds the engine
    # (trainer_arguments.check_trainer_arguments, which the dry run's plan runs too).
    self.model_config = model_config
    self.data = data
    self.strategy = strategy
    self.global_batch_size = global_batch_size
    self.eval_batches = eval_batches
    self.grad_clip_norm = grad_clip_norm
    self.jit_compile = bool(jit_compile)
    self.seed = seed
    self.loss_fn = loss_fn
    self.mask_probability = mask_probability
    self.tokens_per_step = global_batch_size * model_config.max_len
    self.flops_per_token = flops_per_token(model_config, mask_probability)
    self.flops_per_step = self.tokens_per_step * self.flops_per_token
    # Before building anything: a step that cannot fit is bad input (exit 2), not an OOM later.
    memory.check_step_memory(model_config, global_batch_size, strategy, mask_probability)

    keras.utils.set_random_seed(seed)
    with strategy.scope():
      self.model = model_fn(model_config)
      self.optimizer = optimizer_fn()
      self.optimizer.build(self.model.trainable_variables)  # Before restore (docs/design.md).
      # Read through `global_step` and `examples_seen` (ints): only the engine moves them.
      self._step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self._examples_seen = tf.Variable(0, dtype=tf.int64, trainable=False,
                                        name="examples_seen")
    # The engine's whole state as one trackable: what a loop's checkpoints save and restore.
    self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                          step=self._step, examples_seen=self._examples_seen)
    # Every variable's value as built (weights, optimizer slots and counters, the dropout seed
    # generators' states): `reinitialize` returns to it.
    self._built_values = [v.numpy() for v in self._variables()]
    self._train_loop = self._make_train_loop()
    self._eval_loop = self._make_eval_loop()
    self._stacked_eval_batches = None
    # The Trainer that drives the engine now (trainer.py): a later one over a shared engine
    # moves its state to another run, so an earlier one must not train or save it any more.
    self.driver = None

  # ---- state -------------------------------------------------------------------------------

  def _variables(self):
    return (list(self.model.variables) + list(self.optimizer.variables)
            + [self._step, self._examples_seen])

  def reinitialize(self) -> None:
    """Returns every variable to its value as built, keeping the compiled train and eval
    loops: the same as a new engine with the same arguments, without building or tracing."""
    # Not keras.utils.set_random_seed (docs/design.md, "Platform constraints": it makes every
    # compiled loop retrace, ~1.7 s per candidate on lag_quickstart's pool). Nothing traced
    # needs it: dropout draws from Keras seed-generator variables, which the loop below restores.
    random.seed(self.seed)
    np.random.seed(self.seed)
    for variable, value in zip(self._variables(), self._built_values):
      variable.assign(value)

  @property
  def global_step(self) -> int:
    """Optimizer steps taken (a grown model continues its base's count)."""
    return int(self._step.numpy())

  @property
  def examples_seen(self) -> int:
    """The data position: training examples consumed (a resumed run continues from it)."""
    return int(self._examples_seen.numpy())

  def model_state(self) -> ModelState:
    """The model's weights, AdamW moments and optimizer step, copied into numpy."""
    return keras_io.state_from_model(self.model, self.optimizer)

  def load_state(self, state: ModelState) -> None:
    """Writes a `ModelState` into the model: its weights, and its AdamW moments and optimizer
    step if it has them (else the optimizer is left as it is). The step counter and data
    position stay (see `start_from`)."""
    keras_io.assign_state(state, self.model,
                          self.optimizer if state.has_optimizer_state else None)

  def start_from(self, state: ModelState, step: int, examples_seen: int) -> None:
    """Loads `state` (`load_state`) at global `step` and data position `examples_seen`."""
    self.load_state(state)
    self._step.assign(step)
    self._examples_seen.assign(examples_seen)

  def restore(self, directory: str, prefix: str = "") -> Optional[str]:
    """Restores the newest good checkpoint in `directory` (an older one if the newest is
    damaged, checkpoints.py); its path, or None if there is none."""
    return checkpoints.restore_latest_good(self.checkpoint, directory, prefix,
                                           self._older_checkpoint_layouts())

  def _older_checkpoint_layouts(self):
    if not isinstance(self.optimizer, optimizers.GrowthAdamW):
      return ()

    def born_at_step_0() -> str:
      self.optimizer.every_moment_born_at_step_0()
      return ("written by stock AdamW (no moment-birth slots): resumed with every moment born "
              "at step 0, i.e. stock AdamW's bias correction (exact for a run that never grew)")
    stock = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer.stock_adamw_layout(),
                                step=self._step, examples_seen=self._examples_seen)
    return (checkpoints.OlderLayout(stock, born_at_step_0),)

  def learning_rate(self) -> float:
    return float(self.optimizer.learning_rate)

  # ---- compiled functions ------------------------------------------------------------------

  def apply_gradients(self, gradients):
    """The optimizer half of a step: clips the all-reduced gradients and applies them."""
    if self.grad_clip_norm:
      gradients, _ = tf.clip_by_global_norm(gradients, self.grad_clip_norm)
    # The optimizer all-reduces (sums) again across replicas; pre-divide so the sum is exact.
    replicas = self.strategy.num_replicas_in_sync
    if replicas > 1:
      gradients = [g / replicas for g in gradients]
    self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))

  def _make_train_loop(self):
    variables = self.model.trainable_variables

    def replica_step(batch):
      context = tf.distribute.get_replica_context()
      with tf.GradientTape() as tape:
        loss_sum, weight_sum, _ = self.loss_fn(self.model, batch, True)
        global_weight = context.all_reduce(tf.distribute.ReduceOp.SUM, weight_sum)
        loss = loss_sum / tf.maximum(global_weight, 1.0)
      # Embedding gradients arrive as IndexedSlices; densify so all replicas reduce alike.
      gradients = [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
      self.apply_gradients(context.all_reduce(tf.distribute.ReduceOp.SUM, gradients))
      return loss

    if self.jit_compile:
      replica_step = tf.function(replica_step, jit_compile=True)

    @tf.function
    def train_loop(iterator, num_steps):
      total = tf.constant(0.0)
      for _ in tf.range(num_steps):
        per_replica_loss = self.strategy.run(replica_step, args=(next(iterator),))
        total += self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica_loss, axis=None)
      return total / tf.cast(num_steps, tf.float32)

    return train_loop

  def _make_eval_loop(self):
    """One compiled call evaluates every held-out batch: each replica loops over its stacked
    batches (one traced loop body, one host sync per evaluation instead of one per batch) and
    returns per-batch sums, reduced across replicas batch by batch."""
    def replica_eval(stack):
      num_batches = tf.nest.flatten(stack)[0].shape[0]
      sums = [tf.TensorArray(tf.float32, size=num_batches) for _ in range(3)]
      for index in tf.range(num_batches):
        batch = tf.nest.map_structure(lambda x: x[index], stack)
        values = self.loss_fn(self.model, batch, False)
        sums = [a.write(index, tf.cast(v, tf.float32)) for a, v in zip(sums, values)]
      return [a.stack() for a in sums]

    @tf.function
    def eval_loop(stacked_batches):
      per_replica = self.strategy.run(replica_eval, args=(stacked_batches,))
      return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None)
              for s in per_replica]
    return eval_loop

  # ---- training and evaluation -------------------------------------------------------------

  def run_steps(self, iterator, num_steps: int) -> float:
    """Runs `num_steps` training steps on `iterator` in one compiled call without moving the
    step counter or data position (benchmarks, calibration); the mean loss."""
    return float(self._train_loop(iterator, tf.constant(num_steps)))

  def train(self, iterator, num_steps: int) -> float:
    """Runs `num_steps` training steps on `iterator` (from `train_iterator`) and moves the
    step counter and data position past them; the mean loss (NaN/Inf are the caller's)."""
    loss = self.run_steps(iterator, num_steps)
    self._step.assign_add(num_steps)
    self._examples_seen.assign_add(num_steps * self.global_batch_size)
    return loss

  def measure_flops_per_second(self, steps_per_call: int, calls: int = 2) -> float:
    """Training FLOP/s of the compiled step on this strategy: `calls` calls of
    `steps_per_call` steps, timed after one warm-up call (tracing, compilation). Like
    `run_steps` it trains the weights but moves no counter, so it is meant for a throwaway
    engine (the dry run's calibration)."""
    iterator = self.train_iterator()
    self.run_steps(iterator, steps_per_call)
    start = time.perf_counter()
    for _ in range(calls):
      self.run_steps(iterator, steps_per_call)
    seconds = time.perf_counter() - start
    return calls * steps_per_call * self.flops_per_step / seconds

  def train_iterator(self):
    """The distributed training batches from the current data position."""
    start = self.examples_seen
    dataset = self.strategy.distribute_datasets_from_function(
        lambda context: self.data.train_dataset(
            context, self.global_batch_size, self.model_config.objective, start_example=start))
    return iter(dataset)

  def _eval_batches(self):
    """The fixed held-out batches, read once and kept stacked on each replica's device (the
    eval set is the same every call: data.eval_dataset)."""
    if self._stacked_eval_batches is None:
      dataset = self.strategy.distribute_datasets_from_function(
          lambda context: self.data.eval_dataset(
              context, self.global_batch_size, self.eval_batches, self.model_config.objective))
      per_batch = [self.strategy.experimental_local_results(batch) for batch in dataset]
      if not per_batch:
        raise ValueError("the eval split produced no batches; lower Trainer.eval_batches or "
                         "global_batch_size")
      stacks = [tf.nest.map_structure(_stack_on_device, *[b[r] for b in per_batch])
                for r in range(len(per_batch[0]))]
      # This worker's replicas: ids are global, local results come in the same order, and a
      # multi-worker strategy numbers each worker's replicas contiguously.
      self._stacked_eval_batches = self.strategy.experimental_distribute_values_from_function(
          lambda context: stacks[context.replica_id_in_sync_group % len(stacks)])
    return self._stacked_eval_batches

  def evaluate(self) -> EvalResult:
    """Loss on the fixed held-out batches: overall, per batch (for standard errors), accuracy."""
    loss_sums, weight_sums, correct_sums = (
        t.numpy().tolist() for t in self._eval_loop(self._eval_batches()))
    batch_losses = [loss / max(weight, 1.0) for loss, weight in zip(loss_sums, weight_sums)]
    weight_total = sum(weight_sums)
    return EvalResult(eval_loss=sum(loss_sums) / max(weight_total, 1.0),
                      eval_accuracy=sum(correct_sums) / max(weight_total, 1.0),
                      eval_batch_losses=batch_losses)


@dataclasses.dataclass(frozen=True)
class EvalResult:
  """One evaluation on the fixed held-out batches (what `StepEngine.evaluate` returns)."""

  eval_loss: float
  eval_accuracy: float
  eval_batch_losses: List[float]  # Per held-out batch, for paired standard errors.

  def metrics(self) -> Dict[str, object]:
    """The fields as metrics.jsonl records them (records.MetricsRow reads them back)."""
    return dataclasses.asdict(self)


def _stack_on_device(*tensors: tf.Tensor) -> tf.Tensor:
  """Stacks one replica's batches where they already are (its device), not on the default."""
  with tf.device(tensors[0].device):
    return tf.stack(tensors)
