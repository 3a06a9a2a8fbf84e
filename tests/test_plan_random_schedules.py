"""The plan against real runs of random small schedules (issue: "plan = run"), beside the
shipped gin files (tests/test_plan_every_gin.py): for every selector rule, a one-shot LAG run or
an adaptive gradual run whose depths, pool, steps and probe schedule are a seeded draw, run for
real on a tiny model.

* Without a race (fixed k, successive halving) nothing stops early: the run's FLOPs equal the
  plan's, phase by phase (base, probes, the evaluations the decisions read, continuations).
* A race: run <= plan <= the run with every probe budget spent. Its plan is the race's costliest
  end, so it charges at most the probes and evaluations a race may still skip; everything else
  (base, the stages' steps) the run spends in full (a winner that stopped early continues
  longer).
"""

import gin
import numpy as np
import pytest

from lag_tf import config_io
from lag_tf import configurables  # noqa: F401  Registers every configurable.
from lag_tf import model_dir_store as store
from lag_tf import plan as plan_lib
from lag_tf.experiments.registry import run_experiment
from lag_tf.training import progress
from lag_fixtures import TINY_BINDINGS, strategy

# The single-shape depth candidates of gin/growth/depth_pool.gin (a pool grows to one shape).
DEPTH = ["stack", "stack_noise", "stack_reset", "duplicate", "midas", "repeat_top",
         "random_top", "random_interleave", "zero_top", "zero_duplicate"]
# (rule, probe budget share, kind): every rule once, both kinds; depths, pool and steps drawn.
CASES = [("lag", 0.0, "lag"), ("successive_halving", 0.0, "gradual"), ("race", 0.0, "gradual"),
         ("race", 0.9, "lag")]


def _pool_bindings(rng, scope):
  names = rng.choice(DEPTH, size=int(rng.integers(2, 5)), replace=False)
  return [f"{scope}/growth.Pool.name = '{scope}'",
          f"{scope}/growth.Pool.candidates = ["
          + ", ".join(f"@{n}/growth.Candidate()" for n in names) + "]"]


def _lag(rng, long_stages):
  probe = int(rng.choice([2, 4, 6]))
  continuation = rng.choice([30, 40] if long_stages else [0, 2, 4])
  return "experiments/lag_quickstart.gin", [
      f"lag_experiment.base_steps = {int(rng.choice([4, 6, 8]))}",
      f"TARGET_LAYERS = {int(rng.choice([3, 4]))}",
      f"ProbeSchedule.probe_steps = {probe}",
      f"ProbeSchedule.eval_steps = {(0,) if rng.random() < 0.5 else (0, probe // 2)}",
      f"lag_experiment.continue_steps = {int(continuation)}",
      "lag_experiment.pool = @drawn/growth.Pool()"] + _pool_bindings(rng, "drawn")


def _gradual(rng, long_stages):
  layers = (1, 2) if rng.random() < 0.5 else (1, 2, 3)
  probe = int(rng.choice([2, 4]))
  longer = [20, 30] if long_stages else [0, 2, 4]
  steps = tuple(probe + int(rng.choice(longer)) for _ in layers)
  return "experiments/gradual_tiny.gin", [
      "NUM_LAYERS = 1", f"StageSchedule.stage_layers = {layers}",
      f"StageSchedule.stage_steps = {steps}", "WarmupDecaySchedule.total_steps = 4",
      f"ProbeSchedule.probe_steps = {probe}", "ProbeSchedule.eval_steps = (0,)",
      "gradual_experiment.mode = 'adaptive'"]


def _by_role(planned):
  roles = {}
  for phase in planned.phases:
    roles[phase.role] = roles.get(phase.role, 0.0) + phase.flops
  return roles


@pytest.mark.parametrize("case", range(len(CASES)))
def test_a_random_small_schedule_runs_as_planned(case, tmp_path, data_dir):
  rule, share, kind = CASES[case]
  rng = np.random.default_rng(1000 + case)
  # A probe budget needs stages long enough for a first look of every candidate to fit.
  gin_file, drawn = {"lag": _lag, "gradual": _gradual}[kind](rng, long_stages=share > 0)
  config_io.parse([gin_file], TINY_BINDINGS + [
      f"DATA_DIR = '{data_dir}'", "SEQUENCE_LENGTH = 32", "Trainer.eval_batches = 2",
      "Trainer.eval_every = 0", "Trainer.checkpoint_every = 1000",
      "lag_experiment.scratch_baseline = False", f"SelectorRule.rule = '{rule}'",
      f"SelectorRule.probe_budget_share = {share}", "SelectorRule.race_segment_steps = 2",
      "SelectorRule.halving_eta = 2"] + drawn)
  planned = plan_lib.build_plan(replicas=1)
  run_progress = progress.RunProgress(planned.training_flops)
  result = run_experiment(strategy(), str(tmp_path), run_progress=run_progress)
  flops, decisions = result["flops"], store.read_decisions(str(tmp_path))
  growths = len(gin.query_parameter("StageSchedule.stage_layers")) - 1 if kind == "gradual" else 1
  assert len(decisions) == growths  # A decision per growth.
  # Training as the run's progress counts it (every Trainer's steps) is the run's own total,
  # and the progress ends at 100% (what a plan charged a race beyond it is forgone).
  assert run_progress.done_fraction() == 1.0
  spent = run_progress.done_flops + flops["decision evals"]
  assert spent == pytest.approx(flops["total"], rel=1e-9)
  roles = _by_role(planned)
  assert flops["base"] == pytest.approx(roles["base"], rel=1e-9)
  if rule != "race":
    assert flops["probes"] == pytest.approx(roles["probe"], rel=1e-9)
    assert flops["decision evals"] == pytest.approx(roles.get("decision evals", 0.0), rel=1e-9)
    assert flops["continuation"] == pytest.approx(roles["continue"], rel=1e-9)
    assert spent == pytest.approx(planned.total_flops, rel=1e-9)
    return
  # A race: run <= plan, and the plan charges no more than the probes and evaluations a race
  # may skip.
  assert spent <= planned.total_flops * (1 + 1e-9)
  assert planned.total_flops - planned.probe_flops <= spent * (1 + 1e-9)
  if share:  # plan <= the run with every probe budget spent, and it says so.
    assert any("within its budget" in p.name for p in planned.phases)
    unspent = sum(d.probe_budget_flops - d.probe_cost_flops - d.probe_eval_flops
                  for d in decisions)
    assert planned.total_flops <= (spent + unspent) * (1 + 1e-9)
