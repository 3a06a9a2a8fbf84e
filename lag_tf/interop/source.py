"""Base models from elsewhere: `base_model.source = 'PATH'` in gin makes a grow / lag / study /
gradual run start from that model instead of training its base.

PATH is a `.keras` file written by `python -m lag_tf.export --format=keras`, or a keras-hub
preset directory (a backbone that maps exactly, see lag_tf/interop/keras_hub_io.py). The model
must have the architecture of the run's `TransformerConfig()` (kind, sizes, activation,
LayerNorm epsilon, tied embeddings); runtime options (fused kernels, dtype policy, dropout) are
the run's. The imported weights start with fresh AdamW moments at optimizer step 0 and data
position 0. Nothing is checkpointed at import: a resumed run imports the same file again (so
every worker of a study can import it too).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import tensorflow as tf
from absl import logging

from lag_tf import gin_registry
from lag_tf.growth.state import ModelState
from lag_tf.models.config import TransformerConfig

# Options that change how a model runs, not which function it computes.
RUNTIME_FIELDS = ("fused_kernels", "dtype_policy", "dropout")


@gin_registry.configurable
def base_model(source: Optional[str] = None) -> Optional[str]:
  """source: a `.keras` file exported by lag_tf or a keras-hub preset directory; None trains
  the base model as usual."""
  return source


def load_base_state(source: str) -> ModelState:
  """The weights of `source` as a `ModelState` (no optimizer state); ValueError if unreadable."""
  if source.endswith(".keras"):
    if not tf.io.gfile.exists(source):
      raise ValueError(f"base_model.source={source}: no such file")
    from lag_tf.interop import keras_export  # pylint: disable=g-import-not-at-top
    return keras_export.state_from_keras(source)
  if tf.io.gfile.isdir(source) and tf.io.gfile.exists(os.path.join(source, "config.json")):
    from lag_tf.interop import keras_hub_io  # pylint: disable=g-import-not-at-top
    return keras_hub_io.state_from_preset(source)
  raise ValueError(f"base_model.source={source}: expected a .keras file written by "
                   "`python -m lag_tf.export` or a keras-hub preset directory")


def imported_state(source: str, expected: TransformerConfig) -> ModelState:
  """`source`'s weights under the run's config `expected`; ValueError naming any mismatch."""
  state = load_base_state(source)
  mismatches = [f"{f.name}={getattr(state.config, f.name)!r} (run: {getattr(expected, f.name)!r})"
                for f in dataclasses.fields(TransformerConfig) if f.name not in RUNTIME_FIELDS
                and getattr(state.config, f.name) != getattr(expected, f.name)]
  if mismatches:
    raise ValueError(f"base_model.source={source} does not match the run's TransformerConfig: "
                     + ", ".join(mismatches))
  return ModelState(expected, state.weights)


def restore_or_train_base(trainer, base_steps: int) -> None:
  """The base model of a growth run: imported from `base_model.source` when one is set (no
  base training), else restored from its checkpoint and trained to `base_steps`."""
  source = base_model()
  if source is not None:
    trainer.load_state(imported_state(source, trainer.model_config))
    logging.info("Base model imported from %s; base training skipped.", source)
    return
  trainer.resume(base_steps)
