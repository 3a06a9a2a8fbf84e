"""Tiny grown models and model dirs in lag_tf's layout (docs/design.md), for the interop tests."""

import json
import os

import numpy as np
import tensorflow as tf

from lag_tf.growth import Candidate, apply_candidate
from lag_tf.training import keras_io
from growth_fixtures import randomized_state, tiny_config
from lag_tf.models import build_transformer
from lag_tf.training.trainer import make_optimizer

GROWTH = Candidate("grown", depth="stack_layers", depth_params={"target_layers": 3},
                   width="widen_d_model", width_params={"target_d_model": 64, "target_heads": 4}, noise_scale=0.1)


def grown_state(kind="encoder", tie=True, seed=0, **changes):
  """A random 2-layer model grown in depth and width (non-trivial weights everywhere)."""
  base = randomized_state(tiny_config(kind, tie, **changes), seed=seed)
  return apply_candidate(GROWTH, base, np.random.default_rng(seed)).without_optimizer_state()


def lag_model(state):
  """lag_tf's own model (fused kernels, as trained) holding `state`."""
  model = build_transformer(state.config)
  keras_io.assign_state(state, model)
  return model


def save_checkpoint(model, directory, step=7):
  """A checkpoint like the Trainer's: model, built AdamW, step and data position."""
  optimizer = make_optimizer(1e-3)
  optimizer.build(model.trainable_variables)
  step_variable = tf.Variable(step, dtype=tf.int64)
  checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_variable,
                                   examples_seen=tf.Variable(step * 8, dtype=tf.int64))
  tf.train.CheckpointManager(checkpoint, os.path.join(directory, "ckpt"), 1,
                             step_counter=step_variable).save(checkpoint_number=step)


def write_json(path, record):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(record, f)


def write_candidate(stage_dir, name, state):
  directory = os.path.join(stage_dir, "candidates", name)
  model = lag_model(state)
  save_checkpoint(model, directory)
  write_json(os.path.join(directory, "candidate.json"), {"name": name,
                                                          "config": state.config.to_dict()})
  return model


def lag_run_dir(model_dir, winner_state, loser_state):
  """A `lag` run: decisions/stage-0.json names 'winner'; returns the winner's lag_tf model."""
  model = write_candidate(model_dir, "winner", winner_state)
  write_candidate(model_dir, "loser", loser_state)
  write_json(os.path.join(model_dir, "decisions", "stage-0.json"), {"stage": 0,
                                                                   "winner": "winner"})
  return model
