"""The step engine (lag_tf/training/engine.py) under the Trainers that drive it: state leaves
as ints and `ModelState`s, never as a raw tf.Variable; a reinitialized engine driven by a new
Trainer in another directory trains exactly as it did the first time; an engine refuses a
Trainer whose settings differ from its own, and a Trainer whose engine was taken over stops."""

import numpy as np
import pytest
import tensorflow as tf

from lag_tf.growth.state import ModelState
from lag_tf.model_dir_store import read_metrics
from lag_tf.training.trainer import Trainer
from trainer_fixtures import tiny_trainer


def _public_variables(thing):
  return [name for name, value in vars(thing).items()
          if not name.startswith("_") and isinstance(value, tf.Variable)]


def _losses(trainer):
  return [(r.step, r.loss, r.eval_loss) for r in read_metrics(trainer.metrics.path)
          if r.loss is not None]


def test_a_reinitialized_engine_trains_like_new_under_a_new_trainer(tmp_path, data_dir):
  first = tiny_trainer(tmp_path / "first", data_dir, train_steps=10)
  engine = first.engine
  assert _public_variables(first) == [] and _public_variables(engine) == []
  assert (first.global_step, first.examples_seen) == (0, 0)
  first.train()
  assert (engine.global_step, engine.examples_seen) == (10, 10 * 8)
  assert isinstance(engine.model_state(), ModelState) and engine.model_state().has_optimizer_state
  trained = [v.numpy() for v in engine.model.weights]

  engine.reinitialize()
  second = Trainer(first.model_config, first.data, first.strategy, str(tmp_path / "second"),
                   global_batch_size=8, train_steps=10, steps_per_loop=5, eval_every=10,
                   eval_batches=4, checkpoint_every=10, jit_compile=False, engine=engine)
  assert second.global_step == 0
  second.train()
  assert _losses(second) == _losses(first)  # Bit for bit: the same run, from the same start.
  for variable, want in zip(engine.model.weights, trained):
    np.testing.assert_array_equal(variable.numpy(), want)
  assert second.restore() == 10  # Its own directory's checkpoint.

  with pytest.raises(RuntimeError, match="no longer drives its engine"):
    first.train(until_step=15)
  with pytest.raises(ValueError, match="built for other settings: global_batch_size=4"):
    Trainer(first.model_config, first.data, first.strategy, str(tmp_path / "third"),
            global_batch_size=4, eval_batches=4, jit_compile=False, engine=engine)
