"""`grow`: train (or load) a small base model, apply one candidate of the pool, save the grown
checkpoint and `growth.json` (with the grown model's eval loss at initialization).

Model dir: metrics.jsonl + ckpt/ (the base), grown/ckpt/ (the grown model), growth.json.
"""

from __future__ import annotations

import gin
import numpy as np
from absl import logging

from lag_tf import gin_registry
from lag_tf import model_dir_store as store
from lag_tf.data import LanguageModelingData
from lag_tf.growth import Pool, apply_candidate, validate_pool
from lag_tf.interop.source import restore_or_train_base
from lag_tf.models import TransformerConfig, count_parameters
from lag_tf.records import GrowthRecord
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import Trainer


def grown_targets(pool: Pool, candidate: str, base_config: TransformerConfig) -> dict:
  """The pool's grown configs by candidate (validate_pool), after checking that `candidate` is
  one of them: what a grow run and its plan check before anything trains."""
  if candidate not in pool.names:
    raise ValueError(f"grow_experiment.candidate={candidate!r} is not in pool "
                     f"{pool.name!r}: {', '.join(pool.names)}")
  return validate_pool(pool, base_config)


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def grow_experiment(strategy, model_dir: str, pool: Pool = gin.REQUIRED,
                    candidate: str = gin.REQUIRED, base_steps: int = gin.REQUIRED,
                    growth_seed: int = 0, run_progress: RunProgress = None) -> dict:
  base_config = TransformerConfig()
  targets = grown_targets(pool, candidate, base_config)
  data = LanguageModelingData()
  with gin.config_scope("base"):  # The role scope (gin/runs/common.gin).
    base = Trainer(base_config, data, strategy, model_dir, train_steps=base_steps, name="base",
                   run_progress=run_progress)
  restore_or_train_base(base, base_steps)
  base_eval = base.evaluate()
  state = base.model_state()
  grown_state = apply_candidate(pool[candidate], state, np.random.default_rng(growth_seed))

  with gin.config_scope("probe"):  # A grown candidate's role.
    grown = Trainer(targets[candidate], data, strategy, store.grown_dir(model_dir),
                    train_steps=base.global_step, name=candidate, run_progress=run_progress)
  grown.start_from(grown_state, base.global_step, base.examples_seen)
  grown_eval = grown.evaluate()
  checkpoint = grown.save()
  record = GrowthRecord(
      candidate=candidate, function_preserving=pool[candidate].function_preserving,
      params_before=count_parameters(base_config),
      params_after=count_parameters(targets[candidate]),
      base_eval_loss=float(base_eval.eval_loss),
      grown_eval_loss=float(grown_eval.eval_loss),
      base_config=base_config.to_dict(), grown_config=targets[candidate].to_dict(),
      grown_checkpoint=checkpoint, step=base.global_step,
      operators=pool[candidate].to_dict(),
      base_flops=base.global_step * base.tokens_per_step * base.flops_per_token)
  if grown.is_chief:
    store.write_growth(model_dir, record)
  logging.info("Grew %s: %d -> %d parameters; eval loss %.4f -> %.4f at initialization",
               candidate, record.params_before, record.params_after,
               record.base_eval_loss, record.grown_eval_loss)
  return record.to_json()
