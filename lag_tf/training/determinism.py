"""Deterministic mode (a gin switch): the same config gives bit-identical runs, so a run that
was preempted or killed and resumed logs exactly the metrics of an uninterrupted one.

  configure_determinism.enabled = True

Seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`) and makes TF ops
deterministic (`tf.config.experimental.enable_op_determinism`). Off by default: on GPUs some
deterministic kernels are slower, and ops without a deterministic kernel then raise.
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf

from lag_tf import gin_registry


@gin_registry.configurable
def configure_determinism(enabled: bool = False, seed: int = 0) -> Optional[str]:
  """Called by the binary after the strategy is made; returns what it set, for the binary to
  log once the run's input is checked (None when off)."""
  if not enabled:
    return None
  keras.utils.set_random_seed(seed)
  tf.config.experimental.enable_op_determinism()
  return f"deterministic mode: seed {seed}, deterministic TF ops"
