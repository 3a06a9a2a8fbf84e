"""Tiny trainers on the small embedded corpus, shared by the training tests and the
strategy-equivalence subprocess."""

import tensorflow as tf

from lag_tf.data import LanguageModelingData
from lag_tf.models import TransformerConfig
from lag_tf.training.schedules import WarmupDecaySchedule
from lag_tf.training.trainer import Trainer, make_optimizer

SMALL_CORPUS = "python_stdlib_corpus/small"
SEQUENCE_LENGTH = 32

# The binary's flags for the same tiny run (quickstart.gin made CI-sized: 20 steps).
TINY_RUN = [
    "--gin_file=gin/experiments/quickstart.gin",
    "--gin_bindings=include 'data/stdlib_corpus_small.gin'",
    "--gin_bindings=SEQUENCE_LENGTH = 32",
    "--gin_bindings=D_MODEL = 32",
    "--gin_bindings=D_FF = 64",
    "--gin_bindings=Trainer.global_batch_size = 8",
    "--gin_bindings=Trainer.train_steps = 20",
    "--gin_bindings=Trainer.steps_per_loop = 10",
    "--gin_bindings=Trainer.eval_every = 10",
    "--gin_bindings=Trainer.checkpoint_every = 10",
    "--gin_bindings=Trainer.jit_compile = False",
    "--gin_bindings=WarmupDecaySchedule.total_steps = 20",
]


def tiny_config(kind="encoder", **changes):
  values = dict(kind=kind, num_layers=2, d_model=32, num_heads=2, d_ff=64, vocab_size=260,
                max_len=SEQUENCE_LENGTH)
  values.update(changes)
  return TransformerConfig(**values)


def tiny_trainer(model_dir, data_dir, strategy=None, config=None, train_steps=40,
                 peak_learning_rate=3e-3, **kwargs):
  data = LanguageModelingData(SMALL_CORPUS, data_dir=data_dir, sequence_length=SEQUENCE_LENGTH)
  kwargs = dict(dict(global_batch_size=8, steps_per_loop=5, eval_every=10, eval_batches=4,
                     checkpoint_every=10, jit_compile=False), **kwargs)
  schedule = WarmupDecaySchedule(peak_learning_rate, warmup_steps=5, total_steps=train_steps)
  return Trainer(config or tiny_config(), data, strategy or tf.distribute.get_strategy(),
                 str(model_dir), train_steps=train_steps,
                 optimizer_fn=lambda: make_optimizer(schedule), **kwargs)
