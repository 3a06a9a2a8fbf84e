"""`study`: the correlation study. Train every candidate of a pool to the full length T on the
same data and seeds, evaluating densely early (every few steps, then log-spaced), so that
`python -m lag_tf.analyze` can tell how well the loss at step t predicts the final loss.

Resumable per candidate. Candidates run one after another, or spread over several processes:
launch W processes with `study_experiment.worker_count=W` and `study_experiment.worker_index=i`
(i = 0..W-1); worker i takes candidates i, i+W, ... Worker 0 trains the shared base model; the
others wait for its final checkpoint.

Model dir: docs/design.md, "The model dir" (candidates/<name>/ for one seed, else seed-<s>/).
"""

from __future__ import annotations

import dataclasses
import time
from typing import List, Sequence

import gin
import numpy as np
import tensorflow as tf
from absl import logging

from lag_tf import gin_registry
from lag_tf import model_dir_store as store
from lag_tf.data import LanguageModelingData
from lag_tf.growth import Pool, pool_targets
from lag_tf.interop.source import base_model, restore_or_train_base
from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.stage import probe_flops
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import flops_per_token
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import Trainer


def study_eval_steps(total_steps: int, dense_every: int, dense_until: int,
                     log_points: int) -> List[int]:
  """0, every `dense_every` steps up to `dense_until`, then `log_points` log-spaced steps to T."""
  steps = set(range(0, min(dense_until, total_steps) + 1, max(dense_every, 1)))
  if total_steps > dense_until and log_points > 0:
    start = max(dense_until, 1)
    steps.update(int(round(s)) for s in np.geomspace(start, total_steps, log_points + 1))
  steps.add(total_steps)
  return sorted(s for s in steps if 0 <= s <= total_steps)


def worker_candidates(names: Sequence[str], worker_index: int, worker_count: int) -> List[str]:
  """The candidates worker `worker_index` of `worker_count` trains: every worker_count-th one
  from its index (ValueError for an index outside the workers)."""
  if not 0 <= worker_index < worker_count:
    raise ValueError(f"study_experiment.worker_index={worker_index} is outside "
                     f"[0, worker_count={worker_count})")
  return [n for i, n in enumerate(names) if i % worker_count == worker_index]


# The ProbeSchedule fields the study sets itself, and from what (lag_tf.plan names them in the
# unused-binding report, so a binding of one is reported as having no effect).
SCHEDULE_FIELDS_SET_BY = {
    "probe_steps": "study_experiment.total_steps",
    "eval_steps": "study_experiment.dense_every, dense_until and log_points",
    "growth_seed": "study_experiment.seeds",
}


def seed_schedule(schedule: ProbeSchedule, total_steps: int, eval_steps: Sequence[int],
                  seed: int) -> ProbeSchedule:
  """The post-growth schedule of one seed's candidates: the user's, with the fields of
  SCHEDULE_FIELDS_SET_BY replaced."""
  replaced = {"probe_steps": total_steps, "eval_steps": tuple(eval_steps), "growth_seed": seed}
  assert set(replaced) == set(SCHEDULE_FIELDS_SET_BY), "keep the two in step"
  return dataclasses.replace(schedule, **replaced)


def _wait_for_base(model_dir: str, base_steps: int, timeout_seconds: float) -> None:
  deadline = time.time() + timeout_seconds
  while True:
    latest = tf.train.latest_checkpoint(store.checkpoint_dir(model_dir))
    if latest and int(latest.rsplit("-", 1)[-1]) >= base_steps:
      return
    if time.time() > deadline:
      raise RuntimeError(f"worker 0 has not finished the base model in {model_dir} after "
                         f"{timeout_seconds:.0f}s")
    time.sleep(5)


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def study_experiment(strategy, model_dir: str, pool: Pool = gin.REQUIRED,
                     base_steps: int = gin.REQUIRED, total_steps: int = gin.REQUIRED,
                     seeds: Sequence[int] = (0,), dense_every: int = 5, dense_until: int = 50,
                     log_points: int = 10, schedule: ProbeSchedule = None,
                     worker_index: int = 0, worker_count: int = 1,
                     base_wait_seconds: float = 3600.0,
                     run_progress: RunProgress = None) -> dict:
  """total_steps: T, the training length after growth of every candidate.
  seeds: one study per seed (data order, masking and growth noise; the base model is shared).
  dense_every / dense_until / log_points: the eval cadence (study_eval_steps).
  schedule: the post-growth learning-rate schedule (SCHEDULE_FIELDS_SET_BY are replaced).
  """
  base_config = TransformerConfig()
  targets = pool_targets(pool, base_config)
  mine = worker_candidates(pool.names, worker_index, worker_count)
  eval_steps = study_eval_steps(total_steps, dense_every, dense_until, log_points)
  schedule = schedule or ProbeSchedule()

  data = LanguageModelingData()
  with gin.config_scope("base"):  # The role scope (gin/runs/common.gin).
    base = Trainer(base_config, data, strategy, model_dir, train_steps=base_steps, name="base",
                   run_progress=run_progress)
  if worker_index == 0 or base_model() is not None:
    restore_or_train_base(base, base_steps)
  else:
    _wait_for_base(model_dir, base_steps, base_wait_seconds)
    base.restore()
  point = GrowthPoint.from_trainer(base)
  # Training FLOPs as lag_tf.plan counts them: the base where this worker trains it, then every
  # candidate's steps (its evaluations are the study's measurements, reported apart).
  flops = {"base": (point.step * point.tokens_per_step
                    * flops_per_token(base_config, point.mask_probability)
                    if worker_index == 0 else 0.0), "candidates": 0.0}
  del base

  finished = []
  for seed in seeds:
    seed_dir = model_dir if len(seeds) == 1 else store.seed_dir(model_dir, seed)
    seed_data = LanguageModelingData(seed=seed)
    # One compiled engine per target shape for this seed's candidates.
    trainers = CandidateTrainers(point, seed_data, strategy,
                                 seed_schedule(schedule, total_steps, eval_steps, seed),
                                 total_steps, run_progress)
    for name in mine:
      logging.info("Study: seed %d, candidate %s, %d steps, %d evals", seed, name, total_steps,
                   len(eval_steps))
      with trainers.run_progress.phase(f"study seed {seed}: {name} "
                                       f"({mine.index(name) + 1} of {len(mine)})"):
        result, tokens_per_step = trainers.probe(
            pool[name], targets[name], store.candidate_dir(seed_dir, name), total_steps)
      flops["candidates"] += probe_flops(result, tokens_per_step)[0]
      finished.append((seed, name, result.failed))
    del trainers
  flops["total"] = flops["base"] + flops["candidates"]
  logging.info("Study done: training FLOPs %s", flops)
  return {"candidates": mine, "seeds": list(seeds), "eval_steps": eval_steps,
          "failed": [(s, n) for s, n, f in finished if f], "flops": flops}
