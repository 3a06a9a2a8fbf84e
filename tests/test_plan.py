"""lag_tf.plan and benchmarks.speedup.budget against real runs: the FLOPs a run records equal
its plan's, FLOP for FLOP, for `train`, `grow`, `study` and the speedup suite's methods (`lag`
and `gradual`: tests/test_plan_random_schedules.py, tests/test_dry_run.py, tests/test_gradual.py).

Exact equality on purpose: a decoder's count is an integer below 2**53 (steps x tokens x an
integral FLOPs per token), so floats hold it exactly whatever order a run and its plan multiply
and add in; a difference of one FLOP is a disagreement. An encoder's head is charged at its mask
probability's share (lag_tf.models.flops), a fraction, so sums may differ in the last bits.
"""

import json

import gin
import pytest

from benchmarks.speedup import __main__ as suite_command
from benchmarks.speedup import budget
from lag_tf import config_io
from lag_tf import configurables  # noqa: F401  Registers every configurable.
from lag_tf import plan as plan_lib
from lag_tf.experiments.grow import grow_experiment
from lag_tf.experiments.registry import run_experiment
from lag_tf.experiments.study import study_experiment
from lag_tf.experiments.registry import train_experiment
from lag_tf.model_dir_store import read_decision
from lag_tf.training import progress
from lag_fixtures import strategy

# A 2-layer model of width 32 on the small corpus, a few steps: every kind runs in seconds.
TINY = ["include 'data/stdlib_corpus_small.gin'", "SEQUENCE_LENGTH = 32", "D_MODEL = 32",
        "D_FF = 64", "Trainer.global_batch_size = 8", "Trainer.steps_per_loop = 2",
        "Trainer.eval_every = 4", "Trainer.eval_batches = 2", "Trainer.checkpoint_every = 4",
        "Trainer.jit_compile = False", "WarmupDecaySchedule.warmup_steps = 2"]


def _parse(gin_file, data_dir, extra=()):
  config_io.parse([gin_file], TINY + [f"DATA_DIR = '{data_dir}'"] + list(extra))
  return plan_lib.build_plan(replicas=1)


def _role_flops(plan, role):
  return sum(p.flops for p in plan.phases if p.role == role)


def test_a_train_runs_flops_equal_its_plan(tmp_path, data_dir):
  planned = _parse("experiments/quickstart.gin", data_dir, ["TRAIN_STEPS = 6"])
  run_progress = progress.RunProgress(planned.training_flops)
  result = train_experiment(strategy(), str(tmp_path), run_progress=run_progress)
  assert result["steps"] == 6 and result["flops"] > 0
  assert result["flops"] == planned.total_flops == planned.training_flops
  assert run_progress.done_flops == planned.training_flops
  summary = (tmp_path / "summary.md").read_text()
  assert f"training compute: {planned.total_flops / 1e12:.4g} TFLOPs" in summary


def test_a_grow_runs_flops_equal_its_plan(tmp_path, data_dir):
  planned = _parse("experiments/grow_once.gin", data_dir,
                   ["BASE_STEPS = 6", "CANDIDATE = 'stack_net2net'", "TARGET_LAYERS = 4",
                    "TARGET_D_MODEL = 64", "TARGET_HEADS = 4", "TARGET_D_FF = 128"])
  grow_experiment(strategy(), str(tmp_path))
  growth = json.loads((tmp_path / "growth.json").read_text())
  assert growth["step"] == 6 and growth["base_flops"] > 0
  assert growth["base_flops"] == _role_flops(planned, "base") == planned.total_flops
  # Growing trains nothing: the grown model's phase costs no training FLOPs.
  assert [p.flops for p in planned.phases if p.role == "grow"] == [0.0]


def test_a_study_runs_flops_equal_its_plan(tmp_path, data_dir):
  """Two seeds, worker 0 of 2: the base and this worker's candidates (every other one), each
  trained to T once per seed; the study's evaluations are its measurements, not in the plan.
  Then worker 1 in the same dir: the other candidates."""
  planned = _parse("experiments/correlation_study_smoke.gin", data_dir,
                   ["BASE_STEPS = 4", "study_experiment.total_steps = 4",
                    "study_experiment.dense_every = 2", "study_experiment.dense_until = 4",
                    "study_experiment.seeds = (0, 1)", "study_experiment.worker_count = 2",
                    "Trainer.steps_per_loop = 2", "Trainer.eval_every = 4",
                    "Trainer.checkpoint_every = 4"])
  result = study_experiment(strategy(), str(tmp_path))
  assert result["candidates"] == ["stack", "zero_top"] and not result["failed"]
  assert result["flops"]["base"] == _role_flops(planned, "base") > 0
  assert result["flops"]["candidates"] == _role_flops(planned, "probe")
  assert len([p for p in planned.phases if p.role == "probe"]) == 2 * 2
  assert result["flops"]["total"] == planned.total_flops
  # Worker 1 of 2 takes the candidates worker 0 did not (every other one; one seed is enough to
  # show it); a third of two is refused.
  second = study_experiment(strategy(), str(tmp_path), worker_index=1, worker_count=2,
                            seeds=(0,))
  assert second["candidates"] == ["random_top"] and not second["failed"]
  with pytest.raises(ValueError, match="worker_index"):
    study_experiment(strategy(), str(tmp_path), worker_index=2, worker_count=2)


@pytest.mark.parametrize("kind, method", [
    ("decoder", "scratch"), ("decoder", "gradual_stacking"), ("decoder", "lag_gradual"),
    ("decoder", "lag_once"), ("encoder", "lag_once")])
def test_a_speedup_suite_method_spends_its_budget_plans_flops(kind, method, tmp_path, data_dir):
  """A smoke-suite method, run as the suite runs it (budget.method_bindings on the suite's gin
  file, then the experiment kind they select), spends the FLOPs budget.py planned for it, and
  lag_tf.plan prices that run the same: scratch (a `train` run), gradual stacking (one-candidate
  stages: no overhead), LAG gradual and LAG once (a decision per growth: the losers' probes and
  the evaluations read are the overhead). The encoder's head is charged at its masked share by
  the budget, the plan and the run alike (lag_tf.models.flops)."""
  gin_file = suite_command.suite_file("smoke")
  suite, _, bindings, plans, _ = suite_command.load_suite(
      gin_file, kind, [f"DATA_DIR = '{data_dir}'"])
  planned = plans[method]
  gin.clear_config()
  config_io.parse([gin_file], list(bindings) + budget.method_bindings(planned, 0, suite=suite))
  assert plan_lib.build_plan(replicas=1).total_flops == planned.total_flops
  model_dir = str(tmp_path / method)
  flops = run_experiment(strategy(), model_dir)["flops"]
  if method == "scratch":
    assert flops == planned.total_flops
    return
  base, grown = planned.phases
  assert flops["base"] == base.flops
  # The winner's probe is the start of its stage; every other probe and eval is overhead.
  decision = read_decision(model_dir, 0 if method == "lag_once" else 1)
  winner_probe = decision.candidates[decision.winner].probe_flops
  assert flops["continuation"] + winner_probe == grown.steps * grown.flops_per_step
  assert flops["probes"] - winner_probe + flops["decision evals"] == grown.overhead_flops
  assert (grown.overhead_flops > 0) == method.startswith("lag_")
  assert flops["total"] == planned.total_flops
