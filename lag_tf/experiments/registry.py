"""Dispatch from the gin setting `run_experiment.kind` to an experiment function (what one is:
docs/design.md, "Data flow of a run", step 3), so main.py holds no experiment-specific code.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

from lag_tf import gin_registry
from lag_tf.experiments.gradual import gradual_experiment
from lag_tf.experiments.grow import grow_experiment
from lag_tf.experiments.lag import lag_experiment
from lag_tf.experiments.schedule import gradual_schedule, lag_schedule, train_schedule
from lag_tf.experiments.study import study_experiment
from lag_tf.experiments.train import train_experiment
from lag_tf.training.progress import RunProgress

EXPERIMENTS: Dict[str, Callable] = {
    "train": train_experiment,
    "grow": grow_experiment,
    "lag": lag_experiment,
    "gradual": gradual_experiment,
    "study": study_experiment,
}
# The kinds whose experiment builds a RunSchedule from its gin arguments and runs it: each
# builder takes (model config, mask probability, **the experiment's arguments), so lag_tf.plan
# builds the run's own schedule.
SCHEDULES: Dict[str, Callable] = {
    "train": train_schedule,
    "lag": lag_schedule,
    "gradual": gradual_schedule,
}


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def run_experiment(strategy, model_dir: str, kind: str = "train",
                   run_progress: Optional[RunProgress] = None) -> dict:
  if kind not in EXPERIMENTS:
    raise ValueError(f"run_experiment.kind={kind!r}: expected one of {sorted(EXPERIMENTS)}")
  return EXPERIMENTS[kind](strategy, model_dir, run_progress=run_progress)
