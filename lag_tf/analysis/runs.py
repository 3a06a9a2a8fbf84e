"""Reads an experiment directory (a growth study, a LAG run, an adaptive gradual run) into plain
dataclasses, tolerating partly finished runs. Where the files are, and their records, is
lag_tf.model_dir_store's: a study's candidates (one seed, or seed-<s>/ dirs), a LAG or gradual
run's decisions with each stage's candidates, and the model dir's own metrics.jsonl (optional).

metrics.jsonl steps are global; a candidate's probe step is step - growth_step (growth_step from
candidate.json, else its first eval step). Tolerated: a truncated last line (a run killed
mid-write), repeated steps after a resume (the last record wins), NaN/Inf written as strings,
missing per-batch losses. A candidate with a non-finite loss has *failed*; its curve is kept up
to the failure.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Dict, List, Optional

import numpy as np

from lag_tf import model_dir_store as store
from lag_tf.records import (CandidateInfo, DecisionRecord, MetricsRow, as_float,  # noqa: F401
                            latest_per_step)  # as_float: re-exported.


class ExperimentDirError(store.ModelDirError):
  """The directory is missing or holds nothing this module can read."""


def metrics_by_step(path: str) -> List[MetricsRow]:
  """A metrics.jsonl's rows by step, one per step (the last written wins); lines that are not
  records (a truncated last line) are skipped. An absent file has none."""
  return latest_per_step(store.read_metrics(path))


# --- Candidates. --------------------------------------------------------------------------------

@dataclasses.dataclass
class CandidateRun:
  """One candidate's training after growth. Steps are probe steps (global step - growth_step)."""

  name: str
  directory: str
  info: CandidateInfo                         # candidate.json (defaults if absent).
  growth_step: int
  eval_steps: np.ndarray                      # [evals], sorted.
  eval_losses: np.ndarray                     # [evals]
  eval_batch_losses: Optional[np.ndarray]     # [evals, batches]; None unless every eval has them.
  failure: Optional[str]                      # e.g. 'eval_loss is nan at probe step 40'.

  @property
  def last_eval_step(self) -> Optional[int]:
    return int(self.eval_steps[-1]) if self.eval_steps.size else None


def _first_failure(rows: List[MetricsRow], growth_step: int) -> Optional[str]:
  for row in rows:
    for key, value in (("loss", row.loss), ("eval_loss", row.eval_loss)):
      if value is not None and not math.isfinite(value):
        return f"{key} is {value} at probe step {row.step - growth_step}"
  return None


def read_candidate(directory: str, name: Optional[str] = None) -> CandidateRun:
  """Reads a candidate dir's metrics and its candidate.json (defaults if it has none)."""
  info = store.read_candidate_info(directory) or CandidateInfo()
  rows = metrics_by_step(store.metrics_path(directory))
  evals = [r for r in rows if r.eval_loss is not None]
  if info.growth_step is not None:
    growth_step = int(info.growth_step)
  else:
    growth_step = evals[0].step if evals else 0
  batch_rows = [r.eval_batch_losses for r in evals]
  batch_losses = None
  if evals and all(batch_rows) and len({len(row) for row in batch_rows}) == 1:
    batch_losses = np.array(batch_rows)
  return CandidateRun(
      name=name or info.name or os.path.basename(directory.rstrip("/")),
      directory=directory, info=info, growth_step=growth_step,
      eval_steps=np.array([r.step - growth_step for r in evals], dtype=np.int64),
      eval_losses=np.array([r.eval_loss for r in evals], dtype=np.float64),
      eval_batch_losses=batch_losses,
      failure=_first_failure(rows, growth_step))


def read_candidates(directory: str) -> Dict[str, CandidateRun]:
  """Every candidate of a stage or seed dir that has metrics, by name."""
  runs = {}
  for name in store.candidate_names(directory):
    candidate = store.candidate_dir(directory, name)
    if store.exists(store.metrics_path(candidate)):
      runs[name] = read_candidate(candidate, name)
  return runs


# --- Decisions (LAG and gradual runs). ----------------------------------------------------------

@dataclasses.dataclass
class LagRun:
  stages: List[DecisionRecord]
  stage_candidates: Dict[int, Dict[str, CandidateRun]]  # Probe curves per stage, if written.
  stage_dirs: Dict[int, str]  # Per stage, where its candidates (and winner) live.


def read_lag_run(directory: str) -> Optional[LagRun]:
  stages = store.read_decisions(directory)
  if not stages:
    return None
  stage_candidates, stage_dirs = {}, {}
  for decision in stages:
    stage_dir = store.stage_dir(directory, decision.stage)
    runs = read_candidates(stage_dir)
    if not runs and len(stages) == 1:  # A one-stage run may keep its probes in DIR/candidates.
      stage_dir = directory
      runs = read_candidates(stage_dir)
    stage_dirs[decision.stage] = stage_dir
    if runs:
      stage_candidates[decision.stage] = runs
  return LagRun(stages=stages, stage_candidates=stage_candidates, stage_dirs=stage_dirs)


def last_eval(metrics_path: str) -> Optional[MetricsRow]:
  """The last row of a metrics.jsonl that has an eval loss (None if none has)."""
  evals = [r for r in metrics_by_step(metrics_path) if r.eval_loss is not None]
  return evals[-1] if evals else None


# --- Studies. -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Study:
  runs: Dict[str, Dict[str, CandidateRun]]  # seed label -> candidate name -> run.

  @property
  def seeds(self) -> List[str]:
    return list(self.runs)


def read_study(directory: str) -> Optional[Study]:
  """The candidates of every seed dir, else of one seed '' in the dir itself."""
  runs = {}
  for seed, seed_dir in store.seed_dirs(directory).items():
    candidates = read_candidates(seed_dir)
    if candidates:
      runs[seed] = candidates
  if not runs:
    candidates = read_candidates(directory)
    if candidates:
      runs[""] = candidates
  return Study(runs=runs) if runs else None


@dataclasses.dataclass
class StudyTable:
  """A study aligned on one grid of probe steps, ready for `correlation`.

  names: candidates present in every seed. steps: probe steps that every non-failed candidate
  evaluated in every seed, up to final_step. final_step (T): the last such step, i.e. the last
  step all non-failed candidates reached. losses: [seeds, candidates, steps] eval losses, NaN
  where a candidate has none (failed ones after their failure). batch_losses: [seeds,
  candidates, steps, batches], or None if any non-failed candidate lacks per-batch losses.
  """

  names: List[str]
  seeds: List[str]
  steps: np.ndarray
  losses: np.ndarray
  batch_losses: Optional[np.ndarray]
  final_step: Optional[int]
  last_steps: Dict[str, int]        # Per candidate, last eval step reached in every seed.
  failed: Dict[str, str]            # Name -> why (first seed that failed).
  flops_per_step: np.ndarray        # [candidates]; NaN where candidate.json lacks it.
  params: Dict[str, Optional[int]]
  function_preserving: Dict[str, Optional[bool]]

  @property
  def final_losses(self) -> np.ndarray:
    """[seeds, candidates] eval loss at final_step."""
    return self.losses[..., -1] if self.steps.size else np.full(self.losses.shape[:2], np.nan)

  @property
  def finished(self) -> bool:
    """True if every non-failed candidate stopped at the same step (T is truly their end)."""
    alive = [self.last_steps[n] for n in self.names if n not in self.failed]
    return len(set(alive)) <= 1


def study_table(study: Study) -> StudyTable:
  seeds = study.seeds
  names = sorted(set.intersection(*(set(study.runs[s]) for s in seeds)))
  failed = {}
  for seed in seeds:
    for name in names:
      failure = study.runs[seed][name].failure
      if failure and name not in failed:
        failed[name] = failure + (f" (seed {seed})" if seed else "")
  alive = [n for n in names if n not in failed]
  last_steps = {}
  for name in names:
    ends = [study.runs[s][name].last_eval_step for s in seeds]
    last_steps[name] = min(-1 if e is None else e for e in ends)
  common = None
  for seed in seeds:
    for name in alive:
      steps = set(int(s) for s in study.runs[seed][name].eval_steps)
      common = steps if common is None else common & steps
  common = sorted(common or [])
  final_step = common[-1] if common else None
  steps = np.array(common, dtype=np.int64)

  losses = np.full((len(seeds), len(names), steps.size), np.nan)
  batch_rows = {}  # (seed index, candidate index, step index) -> per-batch losses.
  for i, seed in enumerate(seeds):
    for j, name in enumerate(names):
      run = study.runs[seed][name]
      index = {int(s): e for e, s in enumerate(run.eval_steps)}
      for t, step in enumerate(common):
        if step in index:
          losses[i, j, t] = run.eval_losses[index[step]]
          if run.eval_batch_losses is not None:
            batch_rows[i, j, t] = run.eval_batch_losses[index[step]]
  # Per-batch losses are usable only if every non-failed candidate has them everywhere, all
  # with the same number of batches (the shared eval set).
  alive_indices = [names.index(n) for n in alive]
  complete = all((i, j, t) in batch_rows for i in range(len(seeds)) for j in alive_indices
                 for t in range(steps.size))
  batch_sizes = {row.size for row in batch_rows.values()}
  batch_losses = None
  if batch_rows and complete and len(batch_sizes) == 1:
    batch_losses = np.full(losses.shape + (batch_sizes.pop(),), np.nan)
    for (i, j, t), row in batch_rows.items():
      batch_losses[i, j, t] = row

  first = study.runs[seeds[0]]
  return StudyTable(
      names=names, seeds=seeds, steps=steps, losses=losses, batch_losses=batch_losses,
      final_step=final_step, last_steps=last_steps, failed=failed,
      flops_per_step=np.array([first[n].info.flops_per_step for n in names]),
      params={n: first[n].info.params for n in names},
      function_preserving={n: first[n].info.function_preserving for n in names})


# --- The whole directory. -----------------------------------------------------------------------

@dataclasses.dataclass
class Experiment:
  directory: str
  study: Optional[Study]          # None for a LAG run (its candidates belong to its stages).
  lag: Optional[LagRun]
  base_metrics: List[MetricsRow]

  @property
  def kind(self) -> str:
    if self.lag is not None:
      return "gradual" if len(self.lag.stages) > 1 else "lag"
    return "study"


def read_experiment(directory: str) -> Experiment:
  """Everything readable under `directory`; ExperimentDirError if missing or empty."""
  if not directory or not store.is_dir(directory):
    raise ExperimentDirError(f"experiment dir {directory!r} does not exist")
  lag = read_lag_run(directory)
  study = None if lag is not None else read_study(directory)
  base = metrics_by_step(store.metrics_path(directory))
  if lag is None and study is None:
    raise ExperimentDirError(
        f"{directory} has no candidates/<name>/metrics.jsonl, seed-<s>/candidates/ or "
        "decisions/stage-<i>.json to analyze")
  return Experiment(directory=directory, study=study, lag=lag, base_metrics=base)
