"""`train`: train one model from scratch (or resume it) and write a summary (a schedule of its
base stage alone: experiments.schedule)."""

from __future__ import annotations

from lag_tf import gin_registry
from lag_tf.data import LanguageModelingData
from lag_tf.experiments.executor import execute
from lag_tf.experiments.schedule import train_schedule
from lag_tf.models import TransformerConfig
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import mask_probability_of


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def train_experiment(strategy, model_dir: str, run_progress: RunProgress = None) -> dict:
  """Trains `TransformerConfig()` on `LanguageModelingData()` with `Trainer` (all from gin)."""
  config, data = TransformerConfig(), LanguageModelingData()
  return execute(train_schedule(config, mask_probability_of(config, data)), data, strategy,
                 model_dir, run_progress)
