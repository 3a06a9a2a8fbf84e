"""`lag_tf.main --dry_run`: the plan's FLOPs, bindings without effect, refusals like a real run,
nothing written; each flag that shapes it (calibrate, a given throughput, search paths, a config
change); and a quiet console (a bad binding prints one stderr line)."""

import os
import re
import subprocess
import sys

import pytest

from lag_tf import config_io, console
from lag_tf import configurables  # noqa: F401  Registers every configurable.
from lag_tf import plan as plan_lib
from lag_tf.lag.gradual import StageSchedule
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.training import progress
from main_fixtures import load_benchmark, run_main_in_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--gin_bindings=include 'data/stdlib_corpus_small.gin'"]
LAG = ["--gin_file=gin/experiments/lag_quickstart.gin"] + SMALL


def _dry(argv, tmp_path, data_dir, capsys, monkeypatch, mode="plan"):
  argv = argv + [f"--gin_bindings=DATA_DIR = '{data_dir}'", f"--model_dir={tmp_path / 'run'}",
                 f"--dry_run={mode}"]
  return run_main_in_process(argv, capsys, monkeypatch)


def _one(plan, role):
  [phase] = [p for p in plan.phases if p.role == role]
  return phase


# Three of the quickstart's ten candidates (the plan reads the pool from gin, as the run does).
CI_POOL = ["ci_pool/growth.Pool.name = 'ci'",
           "ci_pool/growth.Pool.candidates = [@stack/growth.Candidate(), "
           "@zero_top/growth.Candidate(), @random_top/growth.Candidate()]",
           "lag_experiment.pool = @ci_pool/growth.Pool()"]


# Fixed k (LAG) and a race within a probe budget: tests/test_plan_random_schedules.py.
@pytest.mark.parametrize("rule", ["successive_halving", "race"])
def test_a_real_lag_runs_flops_equal_its_plan(tmp_path, data_dir, rule):
  """The plan --dry_run prints is what the run records: base, every probe's training, the
  evaluations the decision read, the continuation. A race's plan is its costliest end
  (lag_tf.lag.probe_cost.stage_charge): the run spends at most that, and stops earlier here."""
  from lag_fixtures import parse_lag_config, strategy
  from lag_tf.experiments.registry import lag_experiment
  parse_lag_config(data_dir, [f"SelectorRule.rule = '{rule}'", "SelectorRule.race_segment_steps = 2",
                              "lag_experiment.base_steps = 10", "lag_experiment.continue_steps = 4"]
                   + CI_POOL)
  planned = plan_lib.build_plan(replicas=1)
  by_role = {}
  for phase in planned.phases:
    by_role[phase.role] = by_role.get(phase.role, 0.0) + phase.flops
  run_progress = progress.RunProgress(planned.training_flops)
  recorded = lag_experiment(strategy(), str(tmp_path), run_progress=run_progress)["flops"]
  # The run's progress ends at 100%: what the plan charged a race beyond what it trained is
  # forgone.
  assert run_progress.done_fraction() == 1.0
  assert run_progress.done_flops == pytest.approx(run_progress.planned_flops, rel=1e-9)
  assert recorded["base"] == pytest.approx(by_role["base"], rel=1e-9)
  assert recorded["decision evals"] > 0
  if rule == "race":
    assert recorded["total"] <= planned.total_flops * (1 + 1e-9)
    assert recorded["decision evals"] <= by_role["decision evals"] * (1 + 1e-9)
    assert run_progress.planned_flops < planned.training_flops  # It stopped early.
  else:
    assert recorded["probes"] == pytest.approx(by_role["probe"], rel=1e-9)
    assert recorded["decision evals"] == pytest.approx(by_role["decision evals"], rel=1e-9)
    assert recorded["continuation"] == pytest.approx(by_role["continue"], rel=1e-9)
    assert recorded["total"] == pytest.approx(planned.total_flops, rel=1e-9)


def test_probe_overhead_benchmark_prints_the_plans_shares(capsys, monkeypatch):
  monkeypatch.setattr("sys.argv", ["probe_overhead.py"])
  assert load_benchmark("probe_overhead").main() == 0
  last = capsys.readouterr().out.strip().splitlines()[-1]
  config_io.parse(["experiments/lag_quickstart.gin"], ["SelectorRule.rule = 'lag'",
                                                       "SelectorRule.probe_budget_share = 0.0",
                                                       "lag_experiment.scratch_baseline = False"])
  share = plan_lib.build_plan(replicas=1).probe_share
  assert last.startswith(f"probe_share_full={share:.3f} probe_share_halving=")
  assert "probe_share_race_worst=" in last


def test_gradual_plan_stages_add_up_and_scratch_spends_the_same_flops():
  config_io.parse(["experiments/gradual_tiny.gin"], [])
  adaptive = plan_lib.build_plan(replicas=1)
  stages = StageSchedule(stage_layers=(1, 2, 3, 4), total_steps=400)
  winner_steps = [p.steps for p in adaptive.phases if p.role in ("base", "continue")]
  probe_steps = ProbeSchedule().probe_steps
  assert [s + (probe_steps if i else 0) for i, s in enumerate(winner_steps)] == stages.steps()
  config_io.parse(["experiments/gradual_tiny.gin"], ["gradual_experiment.mode = 'scratch'"])
  scratch = plan_lib.build_plan(replicas=1)
  assert [p.role for p in scratch.phases] == ["scratch"]
  spent = sum(p.flops for p in adaptive.phases if p.role not in ("probe", "decision evals"))
  winners_probes = sum(p.flops for p in adaptive.phases if " (1 of " in p.name)
  assert scratch.total_flops == pytest.approx(spent + winners_probes, rel=0.01)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, data_dir, capsys, monkeypatch):
  code, out, err = _dry(LAG, tmp_path, data_dir, capsys, monkeypatch)
  assert code == 0, err
  for text in ("phase", "base", "probe stack (1 of 10)", "decision evals", "continue the winner",
               "deciding (probes and their evaluations)",
               "estimated wall time", "assumed", "new run",
               "memory per replica (batch 32): training step ~", "a replica has"):
    assert text in out, text
  assert not (tmp_path / "run").exists() and "warning" not in err


def test_the_quickstarts_race_is_priced_at_its_first_look():
  """docs/usage.md's figures: the quickstart's probe budget allows the race its first look only,
  so the plan is the run's cost (14.74 TFLOPs measured, its 677-step scratch baseline
  included; test_a_real_lag_runs_flops_equal_its_plan checks plan >= run on a tiny one)."""
  config_io.parse(["experiments/lag_quickstart.gin"], [])
  planned = plan_lib.build_plan(replicas=1)
  probes = [p for p in planned.phases if p.role == "probe"]
  assert len(probes) == 10 and {p.steps for p in probes} == {10}
  assert "within its budget" in probes[0].name
  assert _one(planned, "baseline").steps == 677
  assert plan_lib.flops_text(planned.total_flops) == "14.73 TFLOPs"


def test_a_binding_the_experiment_overrides_is_warned_and_strict_refuses(tmp_path, data_dir,
                                                                          capsys, monkeypatch):
  (tmp_path / "mine.gin").write_text("include 'experiments/lag_quickstart.gin'\n\n"
                                     "Trainer.train_steps = 5000\n")
  argv = [f"--gin_file={tmp_path / 'mine.gin'}"] + SMALL
  code, _, err = _dry(argv, tmp_path, data_dir, capsys, monkeypatch)
  assert code == 0
  [warning] = [line for line in err.splitlines() if line.startswith("warning:")]
  assert "Trainer.train_steps is set by lag_experiment.base_steps" in warning
  assert "mine.gin:3" in warning
  code, _, err = _dry(argv + ["--strict_bindings"], tmp_path, data_dir, capsys, monkeypatch)
  assert code == 2 and err.strip().splitlines()[-1].startswith("error: 1 binding(s)")


def test_a_binding_of_a_configurable_the_run_never_calls_is_warned(tmp_path, data_dir, capsys,
                                                                    monkeypatch):
  argv = ["--gin_file=gin/experiments/quickstart.gin"] + SMALL + [
      "--gin_bindings=StageSchedule.total_steps = 7", "--gin_bindings=Trainer.train_steps = 20"]
  code, _, err = _dry(argv, tmp_path, data_dir, capsys, monkeypatch)
  assert code == 0
  warnings = [line for line in err.splitlines() if line.startswith("warning:")]
  assert len(warnings) == 1 and "StageSchedule.total_steps has no effect" in warnings[0]
  assert "never called" in warnings[0] and "--gin_bindings" in warnings[0]


@pytest.mark.parametrize("extra, message", [
    (["--gin_bindings=TARGET_LAYERS = 1"], "invalid growth pool"),
    (["--gin_bindings=SelectorRule.rule = 'best_guess'"], "SelectorRule.rule='best_guess'"),
    (["--gin_bindings=Trainer.eval_every = 15"], "not a multiple of Trainer.steps_per_loop"),
    (["--gin_bindings=lag_experiment.base_steps = -3"], "base: -3 steps"),
    # A step that cannot fit: the plan's largest model is checked as a run's Trainers check it.
    (["--gin_bindings=SEQUENCE_LENGTH = 100000"], "the largest term is attention scores"),
])
def test_dry_run_refuses_like_a_run(extra, message, tmp_path, data_dir, capsys, monkeypatch):
  code, out, err = _dry(LAG + extra, tmp_path, data_dir, capsys, monkeypatch)
  assert code == 2 and not out
  assert err.strip().splitlines()[-1].startswith("error:") and message in err, err
  assert not (tmp_path / "run").exists()


def test_dry_run_refuses_a_model_dir_with_another_config(tmp_path, data_dir, capsys,
                                                         monkeypatch):
  (tmp_path / "run").mkdir()
  (tmp_path / "run" / "config.gin").write_text("Trainer.train_steps = 7\n")
  code, _, err = _dry(LAG, tmp_path, data_dir, capsys, monkeypatch)
  assert code == 2 and "different config.gin" in err
  assert os.listdir(tmp_path / "run") == ["config.gin"]
  code, out, err = _dry(LAG + ["--allow_config_change"], tmp_path, data_dir, capsys,
                        monkeypatch)
  assert code == 0, err
  assert "different config.gin, kept as config.gin.<n> (--allow_config_change)" in out
  assert os.listdir(tmp_path / "run") == ["config.gin"]  # Kept by a real run, not a dry one.


def test_a_given_throughput_sets_the_estimate(tmp_path, data_dir, capsys, monkeypatch):
  code, out, err = _dry(LAG + ["--dry_run_flops_per_second=5e10"], tmp_path, data_dir, capsys,
                        monkeypatch)
  assert code == 0, err
  assert "at 50.0 GFLOP/s (given by --dry_run_flops_per_second)" in out


def test_gin_files_are_found_in_the_search_paths(tmp_path, data_dir, capsys, monkeypatch):
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "my_lag.gin").write_text("include 'experiments/lag_quickstart.gin'\n")
  argv = ["--gin_file=my_lag.gin", f"--gin_search_paths={tmp_path / 'mine'}"] + SMALL
  code, out, err = _dry(argv, tmp_path, data_dir, capsys, monkeypatch)
  assert code == 0 and "estimated wall time" in out, err


def test_calibrate_times_real_steps_and_estimates_from_them(tmp_path, data_dir, capsys,
                                                            monkeypatch):
  code, out, err = _dry(LAG, tmp_path, data_dir, capsys, monkeypatch, mode="calibrate")
  assert code == 0, err
  match = re.search(r"estimated wall time: ([\d.]+) (s|min|h) at ([\d,.]+) GFLOP/s "
                    r"\(measured now on base", out)
  measured = float(match.group(3).replace(",", "")) * 1e9
  # A 2-core CPU trains this 2-layer decoder at a few GFLOP/s; any machine is within 1e7-1e15.
  assert 1e7 < measured < 1e15
  config_io.parse(["experiments/lag_quickstart.gin"], ["include 'data/stdlib_corpus_small.gin'"])
  seconds = float(match.group(1)) * {"s": 1, "min": 60, "h": 3600}[match.group(2)]
  # The rate is printed with one decimal: the estimate is the plan's FLOPs over it, to rounding.
  assert seconds == pytest.approx(plan_lib.build_plan(replicas=1).total_flops / measured,
                                  rel=0.06)
  assert not (tmp_path / "run").exists()


def test_verbose_request_is_read_from_argv():
  assert console.verbose_requested(["x", "-v", "1"]) and console.verbose_requested(["--verbosity=2"])
  assert not console.verbose_requested(["x", "--verbosity=0", "--gin_file=a.gin"])


def test_a_bad_binding_prints_exactly_one_line(tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "lag_tf.main", "--gin_file=gin/experiments/lag_quickstart.gin",
       "--gin_bindings=Trainer.train_stepz = 5", f"--model_dir={tmp_path / 'run'}"],
      cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True, text=True,
      timeout=240)
  assert result.returncode == 2
  lines = [line for line in result.stderr.splitlines() if line.strip()]
  assert len(lines) == 1 and lines[0].startswith("error:") and "train_stepz" in lines[0], lines


def test_a_real_run_warns_too_and_strict_stops_it_before_the_model_dir(tmp_path, data_dir,
                                                                        capsys, monkeypatch):
  argv = LAG + ["--gin_bindings=Trainer.train_steps = 5000", "--strict_bindings",
                f"--gin_bindings=DATA_DIR = '{data_dir}'", f"--model_dir={tmp_path / 'run'}"]
  code, _, err = run_main_in_process(argv, capsys, monkeypatch)
  assert code == 2 and "warning: Trainer.train_steps is set by" in err
  assert err.strip().splitlines()[-1].startswith("error: 1 binding(s) without effect")
  assert not (tmp_path / "run").exists()
