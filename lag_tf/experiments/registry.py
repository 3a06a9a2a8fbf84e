"""Dispatch from the gin setting `run_experiment.kind` to an experiment function.

Every experiment is a function `(strategy, model_dir) -> dict` whose other arguments come from
gin. Registering here keeps main.py free of experiment-specific code.
"""

from __future__ import annotations

from typing import Callable, Dict

import gin

from lag_tf import gin_registry
from lag_tf.experiments.gradual import gradual_experiment
from lag_tf.experiments.grow import grow_experiment
from lag_tf.experiments.lag import lag_experiment
from lag_tf.experiments.study import study_experiment
from lag_tf.experiments.train import train_experiment

EXPERIMENTS: Dict[str, Callable] = {
    "train": train_experiment,
    "grow": grow_experiment,
    "lag": lag_experiment,
    "gradual": gradual_experiment,
    "study": study_experiment,
}


@gin_registry.configurable
def run_experiment(strategy, model_dir: str, kind: str = "train") -> dict:
  if kind not in EXPERIMENTS:
    raise ValueError(f"run_experiment.kind={kind!r}: expected one of {sorted(EXPERIMENTS)}")
  return EXPERIMENTS[kind](strategy, model_dir)
