"""A CI-sized LAG set-up: the quickstart's tiny decoder on the small embedded corpus, a 3-4 candidate pool, and a
throwaway growth operator whose weights are NaN (to test failure isolation)."""

import numpy as np
import tensorflow as tf

from lag_tf import config_io
from lag_tf import configurables  # noqa: F401  Registers every configurable.
from lag_tf.growth import Candidate, Pool, registry
from lag_tf.growth.depth import stack_layers

TINY_BINDINGS = [
    "include 'data/stdlib_corpus_small.gin'",
    "SEQUENCE_LENGTH = 32", "D_MODEL = 32", "D_FF = 64",
    "Trainer.global_batch_size = 8", "Trainer.steps_per_loop = 2", "Trainer.eval_every = 10",
    "Trainer.eval_batches = 4", "Trainer.checkpoint_every = 10", "Trainer.jit_compile = False",
    "WarmupDecaySchedule.total_steps = 10", "WarmupDecaySchedule.warmup_steps = 2",
    "ProbeSchedule.probe_steps = 6", "ProbeSchedule.eval_steps = (0, 2, 4)",
    "ProbeSchedule.rewarmup_steps = 2", "lag_experiment.scratch_baseline = False",
    # The quickstart continues its winner 400 steps; a test that needs more says so.
    "lag_experiment.continue_steps = 4",
    # The tests of fixed-k probing; tests/test_race.py races. No budget: tiny stages.
    "SelectorRule.rule = 'lag'", "SelectorRule.probe_budget_share = 0.0",
]
BASE_STEPS = 10


def parse_lag_config(data_dir, extra=()):
  config_io.parse(["experiments/lag_quickstart.gin"],
                  TINY_BINDINGS + [f"DATA_DIR = '{data_dir}'"] + list(extra))


def nan_layers(config, state, rng, *, target_layers, noise_scale=0.0):
  """Stacks, then poisons every weight with NaN: a candidate that must fail in isolation."""
  config, state = stack_layers(config, state, rng, target_layers=target_layers)
  return config, state.replace(weights=_poison(state.weights))


def _poison(tree):
  if isinstance(tree, dict):
    return {k: _poison(v) for k, v in tree.items()}
  if isinstance(tree, list):
    return [_poison(v) for v in tree]
  return np.full_like(tree, np.nan)


def register_nan_operator():
  registry.growth_operator(
      "depth", function_preserving=False,
      target_config=lambda config, target_layers, **_: config.replace(num_layers=target_layers),
      register_with_gin=False)(nan_layers)


def unregister_nan_operator():
  registry.unregister("nan_layers")


def small_pool(with_nan=False):
  depth = {"target_layers": 4}
  candidates = [Candidate("stack", depth="stack_layers", depth_params=depth),
                Candidate("zero_top", depth="zero_output_layers",
                          depth_params=dict(depth, position="top")),
                Candidate("random_top", depth="random_layers",
                          depth_params=dict(depth, position="top"))]
  if with_nan:
    candidates.append(Candidate("poisoned", depth="nan_layers", depth_params=depth))
  return Pool(candidates, name="test")


def strategy():
  return tf.distribute.get_strategy()
