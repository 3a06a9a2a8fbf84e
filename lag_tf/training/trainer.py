"""The custom distributed training loop (Orbit's pattern, not `model.fit`; DESIGN.md says why).

A `tf.function` runs `steps_per_loop` steps per call, each through `strategy.run`. The loss is
normalized by the *global* number of target tokens (all-reduced), gradients are all-reduced,
then clipped by their global norm, so every strategy computes the same update as one device
with the same global batch. A checkpoint holds model, optimizer, step and data position (the
number of examples consumed), so a resumed run continues the identical data stream.

The Trainer is given its parts (a model factory, the loss, the optimizer factory, the data) and
only its own methods change its state: `restore` (a checkpoint), `start_from` (a grown
`ModelState`), `load_state` (a `ModelState`'s weights, e.g. an imported base model), `reset`
(back to how it was built, in another directory, so one compiled model serves many runs of the
same shape: the candidates of a LAG pool). State leaves as a `ModelState` (`model_state`) and
ints (`global_step`, `examples_seen`).
"""

from __future__ import annotations

import functools
import math
import os
import random
import tempfile
import time
from typing import Callable, Dict, Optional

import gin
import keras
import numpy as np
import tensorflow as tf
from absl import logging

from lag_tf.growth.state import ModelState
from lag_tf.models import TransformerConfig, build_transformer
from lag_tf.models.flops import training_flops_per_token
from lag_tf.training import checkpoints
from lag_tf.training import keras_io
from lag_tf.training import losses
from lag_tf.training import memory
from lag_tf.training import optimizers
from lag_tf.training import preemption
from lag_tf.training import progress
from lag_tf.training import strategy as strategy_lib
from lag_tf.training.metrics import MetricsLogger, read_metrics
from lag_tf.training.schedules import WarmupDecaySchedule
from lag_tf.training.trainer_arguments import check_trainer_arguments


class DivergenceError(RuntimeError):
  """The training loss became NaN or Inf."""


@gin.configurable
def make_optimizer(learning_rate=None, weight_decay: float = 0.01, beta_1: float = 0.9,
                   beta_2: float = 0.999, epsilon: float = 1e-6,
                   bias_correction: str = "per_parameter") -> keras.optimizers.AdamW:
  """AdamW; LayerNorm parameters and biases are excluded from weight decay (as in BERT).

  bias_correction: 'per_parameter' (each parameter's moments count their own age, so fresh
    moments after growth get a fresh Adam's correction; optimizers.py) or 'global' (stock
    AdamW, one counter for all: reproduces runs made before per-parameter correction).
  """
  if learning_rate is None:
    learning_rate = WarmupDecaySchedule()
  optimizer = optimizers.adamw(bias_correction, learning_rate=learning_rate,
                               weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2,
                               epsilon=epsilon)
  optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
  return optimizer


def mask_probability_of(model_config: TransformerConfig, data) -> Optional[float]:
  """The masked LM's share of predicted positions (None for a decoder): sizes its head."""
  masking = getattr(data, "masking", None)
  return (masking.probability if model_config.objective == "mlm" and masking is not None
          else None)


def default_loss_fn(model_config: TransformerConfig, data) -> Callable:
  """lag_tf's token loss for `model_config`'s objective: a masked LM runs its vocabulary head
  only at the positions it predicts (losses.py), sized from the data's masking probability."""
  return functools.partial(losses.token_loss_sums,
                           mask_probability=mask_probability_of(model_config, data))


@gin.configurable(denylist=["model_config", "data", "strategy", "model_dir", "model_fn",
                            "loss_fn"])
class Trainer:
  """Trains one model in `model_dir` (checkpoints under `model_dir/ckpt`).

  Args:
    model_config: the Transformer to train.
    data: a `lag_tf.data.LanguageModelingData`.
    strategy: from `lag_tf.training.strategy.make_strategy`.
    model_dir: where checkpoints, metrics.jsonl and TensorBoard events go.
    global_batch_size: examples per step across all replicas.
    train_steps: total optimizer steps.
    steps_per_loop: steps per `tf.function` call (metrics are logged at loop boundaries).
    eval_every: evaluate every this many steps (a multiple of steps_per_loop); 0 disables.
    eval_steps: further steps to evaluate at (e.g. a dense-early probe cadence); loops stop
      there.
    eval_batches: fixed held-out global batches per evaluation (read once, then kept on the
      devices for the Trainer's life: one compiled call evaluates them all).
    checkpoint_every: save every this many steps (a multiple of steps_per_loop).
    keep_checkpoints: checkpoints kept by the CheckpointManager.
    grad_clip_norm: clip the all-reduced gradient to this global norm (None: no clipping).
    jit_compile: 'auto' (XLA where it compiles, see strategy.supports_xla), True or False.
    seed: Keras' global seed (initialization, dropout).
    name: prefix of progress lines (e.g. a candidate's name).
    optimizer_fn: builds the optimizer (called once, in the strategy's scope).
    model_fn: builds the model from `model_config` (in the strategy's scope, after seeding);
      the model needs `encode`/`predict_logits` for a masked LM's gathered head.
    loss_fn: `(model, batch, training) -> (loss sum, weight sum, correct count)` on one
      replica's batch; default `default_loss_fn(model_config, data)`.
  """

  def __init__(self, model_config: TransformerConfig, data, strategy: tf.distribute.Strategy,
               model_dir: str, global_batch_size: int = 32, train_steps: int = 1000,
               steps_per_loop: int = 50, eval_every: int = 200, eval_steps=(),
               eval_batches: int = 8,
               checkpoint_every: int = 200, keep_checkpoints: int = 3,
               grad_clip_norm: Optional[float] = 1.0, jit_compile="auto", seed: int = 0,
               optimizer_fn=make_optimizer, name: str = "",
               model_fn: Callable[[TransformerConfig], keras.Model] = build_transformer,
               loss_fn: Optional[Callable] = None):
    check_trainer_arguments(global_batch_size, train_steps, steps_per_loop, eval_every,
                            checkpoint_every, strategy.num_replicas_in_sync, data.vocab_size,
                            model_config.vocab_size)
    self.model_config = model_config
    self.data = data
    self.strategy = strategy
    self.global_batch_size = global_batch_size
    self.train_steps = train_steps
    self.steps_per_loop = steps_per_loop
    self.eval_every = eval_every
    self.eval_steps = sorted(set(int(s) for s in eval_steps))
    self.eval_batches = eval_batches
    self.checkpoint_every = checkpoint_every
    self.keep_checkpoints = keep_checkpoints
    self.grad_clip_norm = grad_clip_norm
    self.is_chief = strategy_lib.is_chief(strategy)
    if jit_compile == "auto":
      jit_compile = strategy_lib.supports_xla(strategy)
    self.jit_compile = bool(jit_compile)
    self.tokens_per_step = global_batch_size * model_config.max_len
    self.flops_per_step = self.tokens_per_step * training_flops_per_token(model_config)
    self.loss_fn = loss_fn or default_loss_fn(model_config, data)
    # Before building anything: a step that cannot fit is bad input (exit 2), not an OOM later.
    memory.check_step_memory(model_config, global_batch_size, strategy,
                             mask_probability_of(model_config, data))

    self.seed = seed
    keras.utils.set_random_seed(seed)
    with strategy.scope():
      self.model = model_fn(model_config)
      self.optimizer = optimizer_fn()
      self.optimizer.build(self.model.trainable_variables)  # Before restore (DESIGN.md).
      # Read through `global_step` and `examples_seen` (ints): only the Trainer moves them.
      self._step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
      self._examples_seen = tf.Variable(0, dtype=tf.int64, trainable=False,
                                        name="examples_seen")
    self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer,
                                          step=self._step, examples_seen=self._examples_seen)
    # Every variable's value as built (weights, optimizer slots and counters, the dropout seed
    # generators' states): `reset` returns to it, so a reused Trainer starts like a new one.
    self._built_values = [v.numpy() for v in self._variables()]
    self.metrics = None
    self._move_to(model_dir, name)
    self._train_loop = self._make_train_loop()
    self._eval_loop = self._make_eval_loop()
    self._stacked_eval_batches = None

  # ---- state -------------------------------------------------------------------------------

  def _variables(self):
    return (list(self.model.variables) + list(self.optimizer.variables)
            + [self._step, self._examples_seen])

  def _move_to(self, model_dir: str, name: str) -> None:
    self.model_dir = model_dir
    self.name = name
    # The step this run of the model began at (0, or the growth step for a grown model): it is
    # evaluated before training so every run's curve starts at its initialization.
    self.first_step = 0
    self._phase_start: Optional[int] = None  # Where this directory's curve starts (progress).
    self.checkpoint_manager = tf.train.CheckpointManager(
        self.checkpoint, _checkpoint_dir(model_dir, self.is_chief),
        max_to_keep=self.keep_checkpoints, step_counter=self._step)
    if self.metrics is not None:
      self.metrics.close()
    self.metrics = MetricsLogger(model_dir, enabled=self.is_chief, name=name)

  def reset(self, model_dir: str, name: str = "") -> None:
    """Returns every variable to its value as built and moves checkpoints, metrics and
    TensorBoard to `model_dir`, keeping the compiled train and eval steps: the same as a new
    Trainer with the same arguments in `model_dir`, without building or tracing again."""
    # Not keras.utils.set_random_seed: its tf.random.set_seed clears TensorFlow's kernel cache,
    # so the next call of each compiled step instantiates and optimizes its graph again (~1.7 s
    # per candidate on lag_quickstart's pool, benchmarks/probe_wall.py). Nothing traced needs
    # it: dropout draws from Keras seed-generator variables, which the loop below restores.
    random.seed(self.seed)
    np.random.seed(self.seed)
    for variable, value in zip(self._variables(), self._built_values):
      variable.assign(value)
    self._move_to(model_dir, name)

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
    """Starts from a `ModelState` (weights, and AdamW moments and step if it has them) at
    global `step` and data position `examples_seen` (e.g. a model grown at that step); the
    curve starts with an evaluation at `step`."""
    self.load_state(state)
    self._step.assign(step)
    self._examples_seen.assign(examples_seen)
    self.first_step = int(step)
    self._phase_start = int(step)

  def resume(self, until_step: Optional[int] = None) -> Optional[Dict[str, object]]:
    """Restores the latest checkpoint, then trains to `until_step` (default: train_steps) if
    it is short of it. Returns the last eval record, or None when there was nothing to train."""
    until_step = self.train_steps if until_step is None else until_step
    if self.restore() < until_step:
      return self.train(until_step=until_step)
    return None

  def restore(self) -> int:
    """Restores the latest checkpoint if there is one; returns the step."""
    # Every worker restores the chief's checkpoint (non-chiefs save to scratch dirs).
    # A damaged newest checkpoint is reported and the previous one restored (checkpoints.py).
    latest = checkpoints.restore_latest_good(
        self.checkpoint, os.path.join(self.model_dir, "ckpt"), self._prefix(),
        self._older_checkpoint_layouts())
    if latest:
      logging.info("%sRestored %s at step %d.", self._prefix(), latest, self.global_step)
    # Also without a checkpoint: a run killed before its first save left records to redo.
    self.metrics.truncate_after(self.global_step)
    self._report_held()
    return self.global_step

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

  def _report_held(self) -> None:
    """Tells the run's progress how much training this directory's model holds."""
    if self._phase_start is None:
      # Restored: the curve's first record is where this model began (0, or its growth step).
      records = read_metrics(self.metrics.path)
      self._phase_start = records[0]["step"] if records else self.global_step
    progress.RUN.hold(self.model_dir,
                      (self.global_step - self._phase_start) * self.flops_per_step)

  def save(self) -> str:
    return checkpoints.save(self.checkpoint_manager, self.global_step)

  def learning_rate(self) -> float:
    return float(self.optimizer.learning_rate)

  # ---- compiled functions ------------------------------------------------------------------

  def _replica_loss(self, batch, training: bool):
    """(sum of weighted token losses, sum of weights, weighted correct count) on one replica."""
    return self.loss_fn(self.model, batch, training)

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
        loss_sum, weight_sum, _ = self._replica_loss(batch, training=True)
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
        values = self._replica_loss(batch, training=False)
        sums = [a.write(index, tf.cast(v, tf.float32)) for a, v in zip(sums, values)]
      return [a.stack() for a in sums]

    @tf.function
    def eval_loop(stacked_batches):
      per_replica = self.strategy.run(replica_eval, args=(stacked_batches,))
      return [self.strategy.reduce(tf.distribute.ReduceOp.SUM, s, axis=None)
              for s in per_replica]
    return eval_loop

  # ---- data --------------------------------------------------------------------------------

  def run_steps(self, iterator, num_steps: int) -> float:
    """Runs `num_steps` training steps on `iterator` in one compiled call (no step counter,
    metrics or checkpoints: the loop `train` drives, e.g. for benchmarks); the mean loss."""
    return float(self._train_loop(iterator, tf.constant(num_steps)))

  def measure_flops_per_second(self, loops: int = 2) -> float:
    """Training FLOP/s of this model's compiled step on this strategy: `loops` calls of
    `steps_per_loop` steps, timed after one warm-up call (tracing, compilation). Like
    `run_steps` it trains the weights but moves no step counter, metric or checkpoint, so it
    is meant for a throwaway Trainer (the dry run's calibration)."""
    iterator = self.train_iterator()
    self.run_steps(iterator, self.steps_per_loop)
    start = time.perf_counter()
    for _ in range(loops):
      self.run_steps(iterator, self.steps_per_loop)
    seconds = time.perf_counter() - start
    return loops * self.steps_per_loop * self.flops_per_step / seconds

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

  def evaluate(self) -> Dict[str, object]:
    """Loss on the fixed held-out batches: overall, per batch (for standard errors), accuracy."""
    loss_sums, weight_sums, correct_sums = (
        t.numpy().tolist() for t in self._eval_loop(self._eval_batches()))
    batch_losses = [loss / max(weight, 1.0) for loss, weight in zip(loss_sums, weight_sums)]
    weight_total = sum(weight_sums)
    return {"eval_loss": sum(loss_sums) / max(weight_total, 1.0),
            "eval_accuracy": sum(correct_sums) / max(weight_total, 1.0),
            "eval_batch_losses": batch_losses}

  # ---- the loop ----------------------------------------------------------------------------

  def train(self, until_step: Optional[int] = None) -> Dict[str, object]:
    """Trains from the current step to `until_step` (default: train_steps).

    Evaluates at `first_step` (once), every `eval_every` steps, at `eval_steps` and at the end;
    checkpoints every `checkpoint_every` steps and at the end. Returns the last eval record.
    """
    until_step = self.train_steps if until_step is None else until_step
    step = self.global_step
    last_eval = None
    if step == self.first_step and (self.eval_every or self.eval_steps) and not any(
        r["step"] == step and "eval_loss" in r for r in read_metrics(self.metrics.path)):
      last_eval = self._evaluate_record(step)
      self.metrics.write(step, dict(last_eval, learning_rate=self.learning_rate()))
    iterator = self.train_iterator() if step < until_step else None
    if self._phase_start is None:
      self._phase_start = self.first_step if step == self.first_step else None
    self.metrics.reset_clock(step)
    if step < until_step:
      progress.RUN.start_clock()
    while step < until_step:
      num_steps = min(self.steps_per_loop, until_step - step,
                      *[s - step for s in self.eval_steps if s > step])
      loss = self.run_steps(iterator, num_steps)
      step += num_steps
      self._step.assign(step)
      self._examples_seen.assign_add(num_steps * self.global_batch_size)
      progress.RUN.trained(num_steps * self.flops_per_step)
      self._report_held()
      if not math.isfinite(loss):
        # Logged (so the curve shows where it diverged) but never checkpointed.
        self.metrics.write(step, {"loss": loss, "examples_seen": self.examples_seen})
        raise DivergenceError(
            f"{self._prefix()}training loss is {loss} at step {step}; the last good checkpoint "
            f"is {self.checkpoint_manager.latest_checkpoint} (not overwritten)")
      record = {"loss": loss, "learning_rate": self.learning_rate(),
                "examples_seen": self.examples_seen}
      record.update(self.metrics.progress(step, until_step, loss, record["learning_rate"],
                                          self.tokens_per_step))
      is_eval = step == until_step or step in self.eval_steps or (
          self.eval_every and step % self.eval_every == 0)
      if is_eval:
        last_eval = self._evaluate_record(step)
        record.update(last_eval)
      self.metrics.write(step, record)
      saved = step % self.checkpoint_every == 0 or step == until_step
      if saved:
        self.save()
      if step < until_step and preemption.stop_requested(self.strategy):
        # SIGTERM: keep this loop's work (metrics above, checkpoint here), then stop.
        if not saved:
          self.save()
        raise preemption.Preempted(
            f"{self._prefix()}preempted at step {step}; checkpoint "
            f"{self.checkpoint_manager.latest_checkpoint} saved, rerun the same command to "
            "resume")
      if is_eval or step % self.checkpoint_every == 0:
        self.metrics.reset_clock(step)
    return last_eval or self._evaluate_record(step)

  def _evaluate_record(self, step: int) -> Dict[str, object]:
    started = time.perf_counter()
    result = self.evaluate()
    logging.info("%sstep %d eval_loss %.4f eval_accuracy %.4f (%.1fs)", self._prefix(), step,
                 result["eval_loss"], result["eval_accuracy"], time.perf_counter() - started)
    return result

  def _prefix(self) -> str:
    return f"[{self.name}] " if self.name else ""


def _stack_on_device(*tensors: tf.Tensor) -> tf.Tensor:
  """Stacks one replica's batches where they already are (its device), not on the default."""
  with tf.device(tensors[0].device):
    return tf.stack(tensors)


def _checkpoint_dir(model_dir: str, is_chief: bool) -> str:
  """Non-chief workers must save too (saving is collective) but their copies are identical to
  the chief's: they go to a local scratch dir, never into the (possibly gs://) model dir."""
  if is_chief:
    return os.path.join(model_dir, "ckpt")
  return tempfile.mkdtemp(prefix="lag_tf_worker_ckpt_")

