"""Which model of a model dir to export, and where its config and checkpoint are.

The model dir layout is DESIGN.md's. By default the run's final model:
  1. the winner of the last committed decision (decisions/stage-<i>.json, highest i); its
     checkpoint is <stage dir>/candidates/<winner>/ckpt, where the stage dir is the model dir
     for stage 0 (a `lag` run) and <model_dir>/stage-<i> otherwise (a `gradual` run);
  2. else the grown model of a `grow` run (growth.json, grown/ckpt);
  3. else the model dir's own ckpt/ (a `train` run), configured by operative_config.gin.
`candidate` picks a named candidate instead (in stage `stage`'s dir, or the last decision's, or
<model_dir>/candidates); `stage` alone picks that stage's winner; `base` picks the model dir's own
ckpt/ (the base model of a grow/lag/study run, stage 0 of a gradual run).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import List, Optional

import gin
import tensorflow as tf

from lag_tf.training import keras_io
from lag_tf.models import TransformerConfig

_STAGE_FILE = re.compile(r"^stage-(\d+)\.json$")


class LocateError(ValueError):
  """The model dir does not hold the requested model; the message is one line."""


@dataclasses.dataclass(frozen=True)
class LocatedModel:
  config: TransformerConfig
  checkpoint: str           # A checkpoint prefix (…/ckpt/ckpt-N).
  description: str          # e.g. "winner 'stack' of stage 0".


def _read_json(path: str) -> dict:
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def committed_stages(model_dir: str) -> List[int]:
  directory = os.path.join(model_dir, "decisions")
  if not tf.io.gfile.isdir(directory):
    return []
  matches = (_STAGE_FILE.match(name) for name in tf.io.gfile.listdir(directory))
  return sorted(int(m.group(1)) for m in matches if m)


def stage_dir(model_dir: str, stage: int) -> str:
  return model_dir if stage == 0 else os.path.join(model_dir, f"stage-{stage}")


def latest_checkpoint(directory: str, what: str) -> str:
  latest = tf.train.latest_checkpoint(os.path.join(directory, "ckpt"))
  if not latest:
    raise LocateError(f"{what} has no checkpoint in {os.path.join(directory, 'ckpt')}")
  return latest


def config_from_operative_gin(model_dir: str) -> TransformerConfig:
  """The `TransformerConfig()` a run used, from its operative_config.gin (then config.gin)."""
  for name in ("operative_config.gin", "config.gin"):
    path = os.path.join(model_dir, name)
    if not tf.io.gfile.exists(path):
      continue
    with tf.io.gfile.GFile(path) as f:
      text = f.read()
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
  candidate_dir = os.path.join(directory, "candidates", name)
  info_path = os.path.join(candidate_dir, "candidate.json")
  if not tf.io.gfile.exists(info_path):
    available = (sorted(tf.io.gfile.listdir(os.path.join(directory, "candidates")))
                 if tf.io.gfile.isdir(os.path.join(directory, "candidates")) else [])
    listed = ", ".join(n.rstrip("/") for n in available) or "none"
    raise LocateError(f"no candidate {name!r} in {directory} (candidates: {listed})")
  config = TransformerConfig.from_dict(_read_json(info_path)["config"])
  return LocatedModel(config, latest_checkpoint(candidate_dir, what), what)


def locate(model_dir: str, candidate: Optional[str] = None, stage: Optional[int] = None,
           base: bool = False) -> LocatedModel:
  """The model to export (see the module docstring); LocateError if it is not there."""
  if not tf.io.gfile.isdir(model_dir):
    raise LocateError(f"model dir {model_dir} does not exist")
  if base and (candidate is not None or stage is not None):
    raise LocateError("base selects the model dir's own model: not with a candidate or stage")
  stages = committed_stages(model_dir)
  if stage is not None and stage not in stages and candidate is None:
    raise LocateError(f"no committed decision for stage {stage} in {model_dir} "
                      f"(committed: {stages or 'none'})")
  if candidate is not None:
    where = stage if stage is not None else (stages[-1] if stages else 0)
    return _candidate(stage_dir(model_dir, where), candidate,
                      f"candidate {candidate!r} of stage {where}")
  if stages and not base:
    chosen = stages[-1] if stage is None else stage
    winner = _read_json(os.path.join(model_dir, "decisions", f"stage-{chosen}.json"))["winner"]
    located = _candidate(stage_dir(model_dir, chosen), winner,
                         f"winner {winner!r} of stage {chosen}")
    return located
  growth = os.path.join(model_dir, "growth.json")
  if tf.io.gfile.exists(growth) and not base:
    config = TransformerConfig.from_dict(_read_json(growth)["grown_config"])
    return LocatedModel(config, latest_checkpoint(os.path.join(model_dir, "grown"), "the grown "
                                                  "model"), "the grown model of a grow run")
  config = config_from_operative_gin(model_dir)
  return LocatedModel(config, latest_checkpoint(model_dir, "the model dir"),
                      "the model dir's own model")


def load_state(located: LocatedModel):
  """The located checkpoint's weights as a `ModelState` (no optimizer state)."""
  from lag_tf.growth.state import ModelState  # pylint: disable=g-import-not-at-top
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
