"""The training loop of one directory (Orbit's controller; not `model.fit`): what it owns is
docs/design.md's "Data flow of a run", step 4. A checkpoint's data position (the number of
examples consumed) makes a resumed run continue the identical data stream.

A Trainer builds its engine from its arguments, or is given one: the candidates of a LAG pool
that grow to one shape share one engine (lag/probe.py), each with a Trainer of its own in its
own directory; the newest Trainer over an engine drives it. State enters through `restore` (a
checkpoint), `start_from` (a grown `ModelState`) and `load_state` (a `ModelState`'s weights,
e.g. an imported base model), and leaves as a `ModelState` (`model_state`) and ints
(`global_step`, `examples_seen`).
"""

from __future__ import annotations

import functools
import math
import tempfile
import time
from typing import Callable, Optional

import keras
import tensorflow as tf
from absl import logging

from lag_tf import gin_registry
from lag_tf import model_dir_store as store
from lag_tf.growth.state import ModelState
from lag_tf.models import TransformerConfig, build_transformer
from lag_tf.training import checkpoints
from lag_tf.training.engine import EvalResult, StepEngine
from lag_tf.training import losses
from lag_tf.training import optimizers
from lag_tf.training import preemption
from lag_tf.training import progress
from lag_tf.training import strategy as strategy_lib
from lag_tf.training.metrics import MetricsLogger
from lag_tf.training.schedules import WarmupDecaySchedule
from lag_tf.training.trainer_arguments import check_trainer_arguments


class DivergenceError(RuntimeError):
  """The training loss became NaN or Inf."""


@gin_registry.configurable
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


def _engine_value(name: str, doc: Optional[str] = None, driven: bool = False) -> property:
  """A Trainer's read-only view of its engine's `name` (driven: only while this Trainer drives
  the engine, `_driven_engine`; doc: the engine's by default)."""
  return property(lambda t: getattr(t._driven_engine() if driven else t.engine, name),
                  doc=doc or getattr(StepEngine, name).__doc__)


@gin_registry.configurable(denylist=["model_config", "data", "strategy", "model_dir", "model_fn",
                            "loss_fn", "engine", "run_progress"])
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
      devices for the engine's life: one compiled call evaluates them all).
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
    engine: a `StepEngine` built for these same settings to drive instead of building one
      (the engine arguments above are then only checked against it); this Trainer takes it
      over from whichever Trainer drove it before.
    run_progress: the whole run's progress (lag_tf.main's, through the experiment); None: a
      progress of this Trainer's own (no plan, no run ETA).
  """

  def __init__(self, model_config: TransformerConfig, data, strategy: tf.distribute.Strategy,
               model_dir: str, global_batch_size: int = 32, train_steps: int = 1000,
               steps_per_loop: int = 50, eval_every: int = 200, eval_steps=(),
               eval_batches: int = 8,
               checkpoint_every: int = 200, keep_checkpoints: int = 3,
               grad_clip_norm: Optional[float] = 1.0, jit_compile="auto", seed: int = 0,
               optimizer_fn=make_optimizer, name: str = "",
               model_fn: Callable[[TransformerConfig], keras.Model] = build_transformer,
               loss_fn: Optional[Callable] = None, engine: Optional[StepEngine] = None,
               run_progress: Optional[progress.RunProgress] = None):
    check_trainer_arguments(global_batch_size, train_steps, steps_per_loop, eval_every,
                            checkpoint_every, strategy.num_replicas_in_sync, data.vocab_size,
                            model_config.vocab_size)
    if jit_compile == "auto":
      jit_compile = strategy_lib.supports_xla(strategy)
    if engine is None:
      engine = StepEngine(model_config, data, strategy, global_batch_size, eval_batches,
                          grad_clip_norm, bool(jit_compile), seed, optimizer_fn, model_fn,
                          loss_fn or default_loss_fn(model_config, data),
                          mask_probability_of(model_config, data))
    else:
      _check_engine_settings(engine, model_config, data, strategy, global_batch_size,
                             eval_batches, grad_clip_norm, bool(jit_compile), seed)
    self.engine = engine
    engine.driver = self
    self.model_dir = model_dir
    self.name = name
    self.train_steps = train_steps
    self.steps_per_loop = steps_per_loop
    self.eval_every = eval_every
    self.eval_steps = sorted(set(int(s) for s in eval_steps))
    self.checkpoint_every = checkpoint_every
    self.is_chief = strategy_lib.is_chief(strategy)
    # The step this run of the model began at (0, or the growth step for a grown model): it is
    # evaluated before training so every run's curve starts at its initialization.
    self.first_step = 0
    self._phase_start: Optional[int] = None  # Where this directory's curve starts (progress).
    # Non-chief workers must save too (saving is collective) but their copies are identical to
    # the chief's: they go to a local scratch dir, never into the (possibly gs://) model dir.
    self.checkpoint_manager = tf.train.CheckpointManager(
        engine.checkpoint, store.checkpoint_dir(model_dir) if self.is_chief
        else tempfile.mkdtemp(prefix="lag_tf_worker_ckpt_"), max_to_keep=keep_checkpoints)
    self.run_progress = run_progress or progress.RunProgress()
    self.metrics = MetricsLogger(model_dir, enabled=self.is_chief, name=name,
                                 run_progress=self.run_progress)

  # ---- what the engine is and holds (read-only; the engine's own values) -------------------

  model_config = _engine_value("model_config", "The Transformer trained.")
  data = _engine_value("data", "The `LanguageModelingData`.")
  strategy = _engine_value("strategy", "The `tf.distribute.Strategy`.")
  global_batch_size = _engine_value("global_batch_size", "Examples per step, all replicas.")
  eval_batches = _engine_value("eval_batches", "Held-out global batches per evaluation.")
  tokens_per_step = _engine_value("tokens_per_step", "Tokens per training step.")
  mask_probability = _engine_value("mask_probability", "The masked LM's share of predicted "
                                  "positions (None for a decoder): sizes and prices its head.")
  flops_per_token = _engine_value("flops_per_token", "Training FLOPs per token (models/flops).")
  flops_per_step = _engine_value("flops_per_step", "Training FLOPs per step (models/flops).")
  global_step = _engine_value("global_step", driven=True)
  examples_seen = _engine_value("examples_seen", driven=True)

  def model_state(self) -> ModelState:
    """The model's weights, AdamW moments and optimizer step, copied into numpy."""
    return self._driven_engine().model_state()

  def evaluate(self) -> EvalResult:
    """Loss on the fixed held-out batches: overall, per batch (for standard errors), accuracy."""
    return self._driven_engine().evaluate()

  def measure_flops_per_second(self, loops: int = 2) -> float:
    """Training FLOP/s of the engine's compiled step, `loops` calls of `steps_per_loop` steps
    (StepEngine.measure_flops_per_second: trains the weights, moves nothing)."""
    return self._driven_engine().measure_flops_per_second(self.steps_per_loop, loops)

  def _driven_engine(self) -> StepEngine:
    """The engine, if this Trainer still drives it (a later Trainer over a shared engine has
    moved it to another run's state)."""
    if self.engine.driver is not self:
      raise RuntimeError(f"{self._prefix()}Trainer in {self.model_dir} no longer drives its "
                         "engine: a later Trainer took it over")
    return self.engine

  # ---- state -------------------------------------------------------------------------------

  def load_state(self, state: ModelState) -> None:
    """Writes a `ModelState` into the model (StepEngine.load_state); the step counter and data
    position stay (see `start_from`)."""
    self._driven_engine().load_state(state)

  def start_from(self, state: ModelState, step: int, examples_seen: int) -> None:
    """Starts from a `ModelState` (weights, and AdamW moments and step if it has them) at
    global `step` and data position `examples_seen` (e.g. a model grown at that step); the
    curve starts with an evaluation at `step`."""
    self._driven_engine().start_from(state, step, examples_seen)
    self.first_step = int(step)
    self._phase_start = int(step)

  def resume(self, until_step: Optional[int] = None) -> Optional[EvalResult]:
    """Restores the latest checkpoint, then trains to `until_step` (default: train_steps) if
    it is short of it. Returns the last eval record, or None when there was nothing to train."""
    until_step = self.train_steps if until_step is None else until_step
    if self.restore() < until_step:
      return self.train(until_step=until_step)
    return None

  def restore(self) -> int:
    """Restores the latest checkpoint if there is one; returns the step."""
    # Every worker restores the chief's checkpoint (non-chiefs save to scratch dirs).
    latest = self._driven_engine().restore(store.checkpoint_dir(self.model_dir),
                                           self._prefix())
    if latest:
      logging.info("%sRestored %s at step %d.", self._prefix(), latest, self.global_step)
    # Also without a checkpoint: a run killed before its first save left records to redo.
    self.metrics.truncate_after(self.global_step)
    self._report_held()
    return self.global_step

  def _report_held(self) -> None:
    """Tells the run's progress how much training this directory's model holds."""
    if self._phase_start is None:
      # Restored: the curve's first record is where this model began (0, or its growth step).
      rows = store.read_metrics(self.metrics.path)
      self._phase_start = rows[0].step if rows else self.global_step
    self.run_progress.hold(self.model_dir,
                           (self.global_step - self._phase_start) * self.flops_per_step)

  def save(self) -> str:
    """Checkpoints the engine's state into this directory; the checkpoint's path."""
    return checkpoints.save(self.checkpoint_manager, self._driven_engine().global_step)

  def close(self) -> None:
    """Flushes and closes the metrics writer (the Trainer's run in its directory is over)."""
    self.metrics.close()

  # ---- the loop ----------------------------------------------------------------------------

  def train(self, until_step: Optional[int] = None) -> EvalResult:
    """Trains from the current step to `until_step` (default: train_steps).

    Evaluates at `first_step` (once), every `eval_every` steps, at `eval_steps` and at the end;
    checkpoints every `checkpoint_every` steps and at the end. Returns the last eval record.
    """
    engine = self._driven_engine()
    until_step = self.train_steps if until_step is None else until_step
    step = self.global_step
    last_eval = None
    if step == self.first_step and (self.eval_every or self.eval_steps) and not any(
        row.step == step and row.eval_loss is not None
        for row in store.read_metrics(self.metrics.path)):
      last_eval = self._evaluate_record(step)
      self.metrics.write(step, dict(last_eval.metrics(), learning_rate=engine.learning_rate()))
    iterator = engine.train_iterator() if step < until_step else None
    if self._phase_start is None:
      self._phase_start = self.first_step if step == self.first_step else None
    self.metrics.reset_clock(step)
    if step < until_step:
      self.run_progress.start_clock()
    while step < until_step:
      num_steps = min(self.steps_per_loop, until_step - step,
                      *[s - step for s in self.eval_steps if s > step])
      loss = engine.train(iterator, num_steps)
      step += num_steps
      self.run_progress.trained(num_steps * self.flops_per_step)
      self._report_held()
      if not math.isfinite(loss):
        # Logged (so the curve shows where it diverged) but never checkpointed.
        self.metrics.write(step, {"loss": loss, "examples_seen": self.examples_seen})
        raise DivergenceError(
            f"{self._prefix()}training loss is {loss} at step {step}; the last good checkpoint "
            f"is {self.checkpoint_manager.latest_checkpoint} (not overwritten)")
      record = {"loss": loss, "learning_rate": engine.learning_rate(),
                "examples_seen": self.examples_seen}
      record.update(self.metrics.progress(step, until_step, loss, record["learning_rate"],
                                          self.tokens_per_step))
      is_eval = step == until_step or step in self.eval_steps or (
          self.eval_every and step % self.eval_every == 0)
      if is_eval:
        last_eval = self._evaluate_record(step)
        record.update(last_eval.metrics())
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

  def _evaluate_record(self, step: int) -> EvalResult:
    started = time.perf_counter()
    result = self.evaluate()
    logging.info("%sstep %d eval_loss %.4f eval_accuracy %.4f (%.1fs)", self._prefix(), step,
                 result.eval_loss, result.eval_accuracy, time.perf_counter() - started)
    return result

  def _prefix(self) -> str:
    return f"[{self.name}] " if self.name else ""


def _check_engine_settings(engine: StepEngine, model_config, data, strategy, global_batch_size,
                           eval_batches, grad_clip_norm, jit_compile, seed) -> None:
  """A Trainer given an engine refuses one built for other settings than its own arguments
  (gin binds them, e.g. `probe/Trainer.*`): it would silently train something else."""
  given = dict(model_config=model_config, global_batch_size=global_batch_size,
               eval_batches=eval_batches, grad_clip_norm=grad_clip_norm,
               jit_compile=jit_compile, seed=seed)
  differ = [f"{k}={v!r} (engine: {getattr(engine, k)!r})" for k, v in given.items()
            if getattr(engine, k) != v]
  differ += [k for k, v in (("data", data), ("strategy", strategy)) if getattr(engine, k) is not v]
  if differ:
    raise ValueError("Trainer: the given StepEngine was built for other settings: "
                     + ", ".join(differ))
