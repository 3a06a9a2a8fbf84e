"""Reads a comparison suite's runs (written by `python -m benchmarks.speedup`) into FLOP curves.

Suite layout (`records`): <suite_dir>/<method>/seed-<s>/ is one lag_tf model dir; beside
it, the suite's record of the run (`RunInfo`: method, seed, experiment kind, the equal-compute
plan with each phase's depth, steps and FLOPs per step, wall seconds, finished) and its output.
The curve of a run is its eval loss against the training FLOPs spent, in the order the run spent
them (its training-loss curve, logged every loop, the same way: it shows the stretches between
sparse evals):

* the first model (scratch, or the small base) from `metrics.jsonl`;
* per growth: every *losing* candidate's probe FLOPs and every evaluation the decision read are
  added at the growth point (the decision needs them before the winner continues), then the
  winner's evals from its own candidate dir (its probe steps are the start of its run and count
  once). Periodic logging evaluations are charged to no method.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Tuple

from benchmarks.speedup import records
from benchmarks.speedup.frontier import Curve
from benchmarks.speedup.records import RunRecord
from lag_tf import model_dir_store as store
from lag_tf.analysis.runs import metrics_by_step


@dataclasses.dataclass
class MethodRun:
  method: str
  seed: int
  curve: Curve
  layers: int                      # Depth of the model it ends with.
  train_curve: Optional[Curve]     # Training loss (every loop) at the same FLOPs axis.
  winners: List[str]               # Per growth, the committed candidate ([] for scratch).
  overhead_flops: float            # Losing candidates' probes.
  total_flops: float
  budget_flops: float
  wall_seconds: float
  finished: bool


@dataclasses.dataclass(frozen=True)
class Scope:
  """Which runs one suite invocation reports and exports: its seeds and its frontier grid
  (frontier method names); None: every one found. Suites whose grids meet share a frontier dir
  (small_long reuses small's runs), which then holds the other suite's budgets and seeds too."""
  frontier_grid: Optional[Tuple[str, ...]] = None
  seeds: Optional[Tuple[int, ...]] = None

  def has_method(self, method: str) -> bool:
    return (self.frontier_grid is None or not method.startswith("frontier_")
            or method in self.frontier_grid)

  def has(self, method: str, seed: int) -> bool:
    return self.has_method(method) and (self.seeds is None or seed in self.seeds)


EVERY_RUN = Scope()

_LOSSES = ("eval_loss", "loss")  # Eval loss (the curve), training loss (train_curve).


def _losses(path: str) -> Dict[str, List[tuple]]:
  """{"eval_loss": [(step, eval loss)], "loss": [(step, training loss)]} of a metrics.jsonl."""
  rows = metrics_by_step(path)
  return {"eval_loss": [(r.step, r.eval_loss) for r in rows if r.eval_loss is not None],
          "loss": [(r.step, r.loss) for r in rows if r.loss is not None]}


def _growth_stage(experiment: str, growth: int) -> int:
  """The stage of the growth-th growth (1-based): a `lag` run grows once, at stage 0."""
  return 0 if experiment == "lag" else growth


def read_method_run(run_dir: str) -> Optional[MethodRun]:
  """The run's curve and decisions, or None if it has not started (no record)."""
  info = records.read_info(run_dir)
  if info is None:
    return None
  phases = info.plan.phases
  points = {key: [(step * phases[0].flops_per_step, loss)
                  for step, loss in values if step <= phases[0].steps]
            for key, values in _losses(store.metrics_path(run_dir)).items()}
  spent = phases[0].steps * phases[0].flops_per_step
  winners, overhead_total = [], 0.0
  for growth, phase in enumerate(phases[1:], start=1):
    stage = _growth_stage(info.experiment, growth)
    decision = store.read_decision(run_dir, stage)
    if decision is None:
      break
    winner = decision.winner
    winners.append(winner)
    overhead = (decision.losing_probe_steps * phase.flops_per_step
                + decision.probe_eval_flops)
    overhead_total += overhead
    growth_step = int(decision.growth_step)
    start = spent + overhead
    winner_dir = store.candidate_dir(store.stage_dir(run_dir, stage), winner)
    for key, values in _losses(store.metrics_path(winner_dir)).items():
      points[key] += [(start + (step - growth_step) * phase.flops_per_step, loss)
                      for step, loss in values if step >= growth_step]
    spent = start + phase.steps * phase.flops_per_step
  if not points["eval_loss"]:
    return None
  curve, train_curve = (Curve(*zip(*sorted(points[key]))) if points[key] else None
                        for key in _LOSSES)
  return MethodRun(method=info.method, seed=int(info.seed), curve=curve,
                   layers=int(phases[-1].layers), train_curve=train_curve,
                   winners=winners, overhead_flops=overhead_total,
                   total_flops=curve.total_flops, budget_flops=float(info.plan.budget_flops),
                   wall_seconds=float(info.wall_seconds or 0.0), finished=bool(info.finished))


def decision_overhead(record: RunRecord) -> float:
  """What a committed run's decisions cost: every losing candidate's probe steps at its
  stage's FLOPs per step, and every evaluation the decisions read."""
  return sum(decision.losing_probe_steps * phase.flops_per_step + decision.probe_eval_flops
             for decision, phase in zip(record.decisions, record.run.plan.phases[1:]))


def run_from_record(record: RunRecord) -> MethodRun:
  """A committed compact record (`compact_record`) as the MethodRun its run dir gave."""
  run = record.run
  flops, losses = zip(*record.curve)
  return MethodRun(method=run.method, seed=int(run.seed), curve=Curve(flops, losses),
                   layers=int(record.layers), train_curve=None, winners=record.winners,
                   overhead_flops=decision_overhead(record), total_flops=float(flops[-1]),
                   budget_flops=float(run.plan.budget_flops),
                   wall_seconds=float(run.wall_seconds or 0.0), finished=bool(run.finished))


def committed_runs(results_dir: Optional[str], frontier: bool
                   ) -> Dict[str, Dict[int, MethodRun]]:
  """{method: {seed: run}} of the finished runs committed under <results_dir>/runs (the
  frontier's or the methods'), for a suite whose run dirs are gone (another machine or
  session): they count in the report and are not run again."""
  runs: Dict[str, Dict[int, MethodRun]] = {}
  if not results_dir:
    return runs
  for record in records.read_records(results_dir):
    if record.run.finished and record.run.method.startswith("frontier_") == frontier:
      run = run_from_record(record)
      runs.setdefault(run.method, {})[run.seed] = run
  return runs


def read_suite(suite_dir: str, results_dir: Optional[str] = None,
               frontier: bool = False, scope: Scope = EVERY_RUN
               ) -> Dict[str, Dict[int, MethodRun]]:
  """{method: {seed: run}} for every run dir under `suite_dir` that has started, and the
  finished runs committed under `results_dir` that have no run dir here; only those in
  `scope`."""
  runs: Dict[str, Dict[int, MethodRun]] = {}
  for method, by_seed in committed_runs(results_dir, frontier).items():
    mine = {seed: run for seed, run in by_seed.items() if scope.has(method, seed)}
    if mine:
      runs[method] = mine
  if not os.path.isdir(suite_dir):
    return runs
  for method in sorted(os.listdir(suite_dir)):
    method_dir = os.path.join(suite_dir, method)
    if (not os.path.isdir(method_dir) or method in ("report", "frontier")
        or not scope.has_method(method)):
      continue
    for run_dir in records.started_runs(method_dir):
      run = read_method_run(run_dir)
      if (run is not None and scope.has(run.method, run.seed)
          and (run.finished or run.seed not in runs.get(run.method, {}))):
        runs.setdefault(run.method, {})[run.seed] = run
  return runs


def read_frontier(frontier_dir: str, scratch: Dict[int, MethodRun],
                  results_dir: Optional[str] = None,
                  scope: Scope = EVERY_RUN) -> Dict[int, Dict[int, List[List[tuple]]]]:
  """{seed: {depth: [one run's eval curve [(FLOPs, eval loss), ...], ...]}} of the finished
  scratch frontier runs in `scope` (`frontier_dir`, written by `python -m benchmarks.speedup`)
  and the suite's own `scratch` runs (the target depth at the budget), in order of their FLOPs.
  A curve's last point is the annealed run's final one; the frontier is the envelope of every
  point (frontier.envelope)."""
  points: Dict[int, Dict[int, List[List[tuple]]]] = {}
  found = read_suite(frontier_dir, results_dir, frontier=True, scope=scope)
  for by_seed in list(found.values()) + [scratch]:
    for seed, run in by_seed.items():
      if run.finished:
        points.setdefault(seed, {}).setdefault(run.layers, []).append(
            [(float(f), float(l)) for f, l in zip(run.curve.flops, run.curve.losses)])
  for by_depth in points.values():
    for runs in by_depth.values():
      runs.sort(key=lambda curve: curve[-1])
  return points


def compact_record(run_dir: str) -> Optional[RunRecord]:
  """What a documented number needs from one run, small enough to commit: the suite's record of
  the run (method, seed, plan, bindings, finished), its charged eval curve and its decision
  records. None if the run has not started."""
  info = records.read_info(run_dir)
  run = read_method_run(run_dir)
  if info is None or run is None:
    return None
  decisions = []
  for growth in range(1, len(info.plan.phases)):
    found = store.read_decision(run_dir, _growth_stage(info.experiment, growth))
    if found is not None:
      decisions.append(found)
  return RunRecord(run=info, layers=run.layers,
                   curve=[(float(f), float(l)) for f, l in zip(run.curve.flops,
                                                               run.curve.losses)],
                   decisions=decisions)


def export_results(suite_dir: str, frontier_dir: str, out_dir: str,
                   scope: Scope = EVERY_RUN) -> List[str]:
  """Writes every finished run's compact record in `scope` to
  <out_dir>/runs/<method>/seed-<s>.json (frontier runs included; an unfinished run is run again
  anyway); returns the paths written."""
  written = []
  for root in (suite_dir, frontier_dir):
    if not os.path.isdir(root):
      continue
    for method in sorted(os.listdir(root)):
      if method in ("report", "frontier") or not scope.has_method(method):
        continue
      for run_dir in records.started_runs(os.path.join(root, method)):
        record = compact_record(run_dir)
        if (record is not None and record.run.finished
            and scope.has(record.run.method, int(record.run.seed))):
          written.append(records.write_record(out_dir, record))
  return written
