"""Which model of a model dir to export, and where its config and checkpoint are.

The model dir layout is lag_tf.model_dir_store's (docs/design.md, "The model dir"). By default
the run's final model:
  1. the winner of the last committed decision (the highest stage's), in its candidate dir;
  2. else the grown model of a `grow` run (growth.json, grown/ckpt);
  3. else the model dir's own ckpt/ (a `train` run), configured by operative_config.gin.
`candidate` picks a named candidate instead (in stage `stage`'s dir, or the last decision's, or
<model_dir>/candidates); `stage` alone picks that stage's winner; `base` picks the model dir's own
ckpt/ (the base model of a grow/lag/study run, stage 0 of a gradual run).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Optional

import gin
import tensorflow as tf

from lag_tf import model_dir_store as store
from lag_tf.training import keras_io
from lag_tf.models import TransformerConfig


class LocateError(ValueError):
  """The model dir does not hold the requested model; the message is one line."""


@dataclasses.dataclass(frozen=True)
class LocatedModel:
  config: TransformerConfig
  checkpoint: str           # A checkpoint prefix (…/ckpt/ckpt-N).
  description: str          # e.g. "winner 'stack' of stage 0".


def latest_checkpoint(directory: str, what: str) -> str:
  latest = tf.train.latest_checkpoint(store.checkpoint_dir(directory))
  if not latest:
    raise LocateError(f"{what} has no checkpoint in {store.checkpoint_dir(directory)}")
  return latest


def config_from_operative_gin(model_dir: str) -> TransformerConfig:
  """The `TransformerConfig()` a run used, from its operative_config.gin (then config.gin)."""
  for name in ("operative_config.gin", "config.gin"):
    path = os.path.join(model_dir, name)
    if not store.exists(path):
      continue
    text = store.read_text(path)
    try:
      with gin.unlock_config():
        gin.clear_config()
        gin.parse_config(text, skip_unknown=True)
        return TransformerConfig()
    except (ValueError, KeyError, SyntaxError, TypeError) as error:
      raise LocateError(f"cannot read the model config from {path}: "
                        f"{' '.join(str(error).split())}") from None
    finally:
      gin.clear_config()
  raise LocateError(f"{model_dir} has no operative_config.gin or config.gin (not a lag_tf "
                    "model dir?)")


def _candidate(directory: str, name: str, what: str) -> LocatedModel:
  candidate_dir = store.candidate_dir(directory, name)
  info = store.read_candidate_info(candidate_dir)
  if info is None:
    listed = ", ".join(store.candidate_names(directory)) or "none"
    raise LocateError(f"no candidate {name!r} in {directory} (candidates: {listed})")
  config = TransformerConfig.from_dict(info.config)
  return LocatedModel(config, latest_checkpoint(candidate_dir, what), what)


def locate(model_dir: str, candidate: Optional[str] = None, stage: Optional[int] = None,
           base: bool = False) -> LocatedModel:
  """The model to export (see the module docstring); LocateError if it is not there."""
  if not tf.io.gfile.isdir(model_dir):
    raise LocateError(f"model dir {model_dir} does not exist")
  if base and (candidate is not None or stage is not None):
    raise LocateError("base selects the model dir's own model: not with a candidate or stage")
  stages = store.committed_stages(model_dir)
  if stage is not None and stage not in stages and candidate is None:
    raise LocateError(f"no committed decision for stage {stage} in {model_dir} "
                      f"(committed: {stages or 'none'})")
  if candidate is not None:
    where = stage if stage is not None else (stages[-1] if stages else 0)
    return _candidate(store.stage_dir(model_dir, where), candidate,
                      f"candidate {candidate!r} of stage {where}")
  if stages and not base:
    chosen = stages[-1] if stage is None else stage
    winner = store.read_decision(model_dir, chosen).winner
    return _candidate(store.stage_dir(model_dir, chosen), winner,
                      f"winner {winner!r} of stage {chosen}")
  growth = None if base else store.read_growth(model_dir)
  if growth is not None:
    config = TransformerConfig.from_dict(growth.grown_config)
    return LocatedModel(config, latest_checkpoint(store.grown_dir(model_dir), "the grown model"),
                        "the grown model of a grow run")
  config = config_from_operative_gin(model_dir)
  return LocatedModel(config, latest_checkpoint(model_dir, "the model dir"),
                      "the model dir's own model")


def load_state(located: LocatedModel):
  """The located checkpoint's weights as a `ModelState` (no optimizer state)."""
  from lag_tf.models import build_transformer  # pylint: disable=g-import-not-at-top
  model = build_transformer(located.config)
  # The blocks' variables are checkpointed only through the optimizer's list of trainable
  # variables (Keras 3 keeps `model.blocks` out of TF's object graph): restore that list, in
  # the order the Trainer's optimizer was built with, and nothing else of the optimizer.
  variables = tf.train.Checkpoint(_trainable_variables=list(model.trainable_variables))
  try:
    tf.train.Checkpoint(model=model, optimizer=variables).restore(
        located.checkpoint).expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as error:
    raise LocateError(f"cannot restore {located.description} from {located.checkpoint}: "
                      f"{' '.join(str(error).split())[:300]}") from None
  return keras_io.state_from_model(model)
