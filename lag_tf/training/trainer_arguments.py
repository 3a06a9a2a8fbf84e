"""The checks a Trainer's arguments pass before anything is built, in one place: Trainer runs
them when it is built, and lag_tf.plan runs them on gin's values for a dry run, so both refuse
the same settings with the same messages."""

from __future__ import annotations

import numbers
from typing import Optional


def check_trainer_arguments(global_batch_size, train_steps, steps_per_loop, eval_every,
                            checkpoint_every, replicas: Optional[int], tokenizer_ids: int,
                            vocab_size: int) -> None:
  """Raises ValueError (naming the Trainer setting) for arguments no run can use.

  replicas: the strategy's replicas in sync (None when unknown, e.g. a dry run for a TPU).
  tokenizer_ids / vocab_size: the data's token ids and the model's embedding rows.
  """
  for label, value in (("global_batch_size", global_batch_size),
                       ("steps_per_loop", steps_per_loop),
                       ("checkpoint_every", checkpoint_every)):
    if not isinstance(value, numbers.Integral) or value < 1:
      raise ValueError(f"Trainer.{label}={value!r}: expected a positive integer")
  if not isinstance(train_steps, numbers.Integral) or train_steps < 0:
    raise ValueError(f"Trainer.train_steps={train_steps!r}: expected an integer >= 0")
  for label, value in (("eval_every", eval_every), ("checkpoint_every", checkpoint_every)):
    if value % steps_per_loop:
      raise ValueError(f"Trainer.{label}={value} is not a multiple of "
                       f"Trainer.steps_per_loop={steps_per_loop}")
  if replicas and global_batch_size % replicas:
    raise ValueError(f"Trainer.global_batch_size={global_batch_size} is not divisible by the "
                     f"{replicas} replicas of the strategy")
  if tokenizer_ids > vocab_size:
    raise ValueError(f"the tokenizer has {tokenizer_ids} ids but TransformerConfig."
                     f"vocab_size={vocab_size}")
