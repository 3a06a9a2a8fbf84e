"""Probing: grow every candidate from the same `GrowthPoint`, train each on the identical data
stream (same start position, same seeds, same post-growth learning-rate schedule) for k steps
and collect its eval losses on the same held-out batches (docs/design.md, "Data flow of a
run", step 5). A candidate's directory holds its checkpoint and metrics, so a half-finished
probe resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import gin
import numpy as np
from absl import logging

from lag_tf import model_dir_store as store
from lag_tf.growth import Candidate, ModelState, apply_candidate
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import ProbeResult
from lag_tf.models import TransformerConfig, count_parameters
from lag_tf.models.flops import flops_per_token
from lag_tf.records import CandidateInfo
from lag_tf.training.engine import StepEngine
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import DivergenceError, Trainer, make_optimizer


@dataclasses.dataclass
class GrowthPoint:
  """Where growth happens: the trained small model and its place in the data stream."""

  state: ModelState        # Weights plus AdamW moments and step.
  step: int                # Global training step at growth.
  examples_seen: int       # Data position at growth.
  tokens_per_step: int = 0  # Of the run's training steps (0: unknown; no probe budget then).
  eval_tokens: int = 0      # Of one evaluation, every held-out batch (0: unknown).
  mask_probability: Optional[float] = None  # The masked LM's (models/flops; None: a decoder).

  @property
  def config(self) -> TransformerConfig:
    return self.state.config

  @classmethod
  def from_trainer(cls, trainer: Trainer) -> "GrowthPoint":
    return cls(state=trainer.model_state(), step=trainer.global_step,
               examples_seen=trainer.examples_seen, tokens_per_step=trainer.tokens_per_step,
               eval_tokens=trainer.eval_batches * trainer.tokens_per_step,
               mask_probability=trainer.mask_probability)


class CandidateTrainers:
  """The Trainers of one growth point's candidates: one compiled engine per distinct target
  config, shared by a Trainer per candidate (docs/design.md, "Data flow of a run", step 5).

  The first candidate of a shape builds a `StepEngine`; each next one reinitializes it (its
  state as built, so it computes exactly what a new one would) and gets a Trainer of its own
  over it, in its own directory (checkpoints, metrics), which restores the candidate's
  checkpoint or starts from its own grown state. The candidates share the point, the data, the
  post-growth schedule and the training length, so nothing else needs a new trace. Engines of
  every distinct shape stay built while this object lives (one per stage); only a candidate's
  newest Trainer drives its engine.
  """

  def __init__(self, point: GrowthPoint, data, strategy, schedule: ProbeSchedule,
               steps_after_growth: int, run_progress: Optional[RunProgress] = None):
    self.point = point
    # The run's progress: every candidate's Trainer reports to it, and the stage names its
    # phases on it (a stage run on its own keeps one of its own).
    self.run_progress = run_progress or RunProgress()
    self.data = data
    self.strategy = strategy
    self.schedule = schedule
    self.steps_after_growth = steps_after_growth
    self._engines: Dict[TransformerConfig, StepEngine] = {}
    self._latest: Dict[TransformerConfig, Trainer] = {}  # Each engine's driver, to close.

  def trainer(self, candidate: Candidate, target: TransformerConfig, directory: str) -> Trainer:
    """The candidate's trainer: restored from its directory, or freshly grown from the point."""
    point, schedule = self.point, self.schedule
    engine = self._engines.get(target)
    if engine is not None:
      self._latest[target].close()
      engine.reinitialize()
    learning_rate = schedule.learning_rate(point.state.optimizer_step or 0,
                                           self.steps_after_growth)
    with gin.config_scope("probe"):  # The role scope (gin/runs/common.gin).
      trainer = Trainer(target, self.data, self.strategy, directory,
                        train_steps=point.step + self.steps_after_growth,
                        eval_steps=[point.step + s for s in schedule.probe_eval_steps()],
                        optimizer_fn=lambda: make_optimizer(learning_rate),
                        name=candidate.name, engine=engine, run_progress=self.run_progress)
    self._engines[target] = trainer.engine
    self._latest[target] = trainer
    if not trainer.restore():
      grown = apply_candidate(candidate, point.state, np.random.default_rng(schedule.growth_seed))
      trainer.start_from(grown, point.step, point.examples_seen)
      if trainer.is_chief:
        store.write_candidate_info(directory, CandidateInfo(
            name=candidate.name, params=count_parameters(target),
            flops_per_token=trainer.flops_per_token, tokens_per_step=trainer.tokens_per_step,
            eval_tokens=trainer.eval_batches * trainer.tokens_per_step,
            function_preserving=candidate.function_preserving, growth_step=point.step,
            candidate=candidate.to_dict(), config=target.to_dict()))
    return trainer

  def probe(self, candidate: Candidate, target: TransformerConfig, directory: str,
            until_probe_step: int) -> Tuple[ProbeResult, int]:
    """Trains one candidate to `until_probe_step` (resuming if it already started); returns its
    result and the tokens per training step.

    A candidate whose loss turns NaN/Inf stops; its failed marker (model_dir_store) keeps it failed
    when the job restarts (it is not retried, and never selected).
    """
    growth_step = self.point.step
    failed = store.read_failure(directory)
    if failed is not None:  # Not trained again: its tokens per step as candidate.json says.
      info = store.read_candidate_info(directory)
      if info is None or info.tokens_per_step is None:
        raise ValueError(f"{store.candidate_info_path(directory)} does not record the "
                         "candidate's tokens per step")
      tokens = int(info.tokens_per_step)
    else:
      trainer = self.trainer(candidate, target, directory)
      tokens = trainer.tokens_per_step
      try:
        if trainer.global_step < growth_step + until_probe_step:
          trainer.train(until_step=growth_step + until_probe_step)
      except DivergenceError as error:
        failed = str(error)
        logging.warning("Candidate %s failed: %s", candidate.name, failed)
        if trainer.is_chief:
          store.mark_failed(directory, failed)
    return probe_result(candidate, target, directory, growth_step, until_probe_step,
                        failed, self.point.mask_probability), tokens


def probe_result(candidate: Candidate, target: TransformerConfig, directory: str,
                 growth_step: int, until_probe_step: int, failed: Optional[str],
                 mask_probability: Optional[float]) -> ProbeResult:
  """A candidate's eval losses (by probe step) as logged in its metrics.jsonl."""
  result = ProbeResult(name=candidate.name, params=count_parameters(target),
                       flops_per_token=flops_per_token(target, mask_probability), failed=failed)
  info = store.read_candidate_info(directory)
  if info is not None:
    result.eval_tokens = int(info.eval_tokens or 0)
  for row in store.read_metrics(store.metrics_path(directory)):
    probe_step = row.step - growth_step
    if 0 <= probe_step <= until_probe_step:
      result.steps_trained = max(result.steps_trained, probe_step)
    if row.eval_loss is not None and 0 <= probe_step <= until_probe_step:
      result.eval_losses[probe_step] = row.eval_loss
      result.eval_batch_losses[probe_step] = list(row.eval_batch_losses or [])
  result.evals = len(result.eval_losses)
  return result
