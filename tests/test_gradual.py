"""Adaptive gradual stacking: stage schedules, generated pools, and a CI-sized run."""

import logging
import os

import pytest

from lag_tf import config_io, plan
from lag_tf import configurables  # noqa: F401  Registers every configurable.
from lag_tf.analysis import report
from lag_tf.experiments.registry import gradual_experiment
from lag_tf.growth import validate_pool
from lag_tf.model_dir_store import read_decision
from lag_tf.lag.gradual import (StagePoolTemplate, StageSchedule, block_start, scratch_steps,
                                stage_pool, template_for_mode)
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import flops_per_token
from lag_tf.training import progress
from lag_fixtures import strategy

TINY = [
    "include 'data/stdlib_corpus_small.gin'", "SEQUENCE_LENGTH = 32", "D_MODEL = 32",
    "D_FF = 64", "Trainer.global_batch_size = 8", "Trainer.steps_per_loop = 2",
    "Trainer.eval_every = 10", "Trainer.eval_batches = 2", "Trainer.checkpoint_every = 10",
    "StageSchedule.stage_layers = (1, 2, 3)", "StageSchedule.total_steps = 30",
    "ProbeSchedule.probe_steps = 4", "ProbeSchedule.eval_steps = (0, 2)",
    "ProbeSchedule.rewarmup_steps = 2", "WarmupDecaySchedule.total_steps = 10",
]


def test_stage_schedule_allocations():
  constant = StageSchedule(stage_layers=(2, 4, 6, 8), total_steps=100)
  assert constant.steps() == [25, 25, 25, 25]
  proportional = StageSchedule(stage_layers=(2, 4, 6, 8), total_steps=100,
                               allocation="proportional")
  assert proportional.steps() == [10, 20, 30, 40]
  assert StageSchedule(stage_layers=(1, 2), stage_steps=(5, 7)).steps() == [5, 7]
  with pytest.raises(ValueError, match="increasing"):
    StageSchedule(stage_layers=(4, 2))
  with pytest.raises(ValueError, match="entries"):
    StageSchedule(stage_layers=(1, 2), stage_steps=(5,))


def test_stage_pools_copy_each_position_and_validate():
  assert [block_start(p, 6, 2) for p in ("top", "middle", "bottom")] == [4, 2, 0]
  pool = stage_pool(StagePoolTemplate(), num_layers=6, target_layers=8, stage=3)
  assert pool.names == ["copy_top", "copy_middle", "copy_bottom", "zero_top"]
  assert pool["copy_middle"].depth_params == {"target_layers": 8, "start": 2, "stop": 4}
  targets = validate_pool(pool, TransformerConfig(num_layers=6, d_model=32, num_heads=2))
  assert {t.num_layers for t in targets.values()} == {8}
  # Positions that coincide are offered once (a 1-layer model has one block).
  assert stage_pool(StagePoolTemplate(), 1, 2, 1).names == ["copy_top", "zero_top"]
  with pytest.raises(ValueError, match="unknown"):
    StagePoolTemplate(positions=("left",))


def test_a_noisy_copy_is_offered_only_to_the_rules_that_choose():
  noisy = StagePoolTemplate(noisy_copy_scale=3.0)
  pool = stage_pool(noisy, num_layers=2, target_layers=3, stage=2)
  assert pool.names == ["copy_top", "copy_middle", "zero_top", "copy_top_noisy"]
  assert pool["copy_top_noisy"].depth_params == pool["copy_top"].depth_params
  assert pool["copy_top_noisy"].noise_scale == 3.0 and pool["copy_top"].noise_scale == 0.0
  base = TransformerConfig(num_layers=2, d_model=32, num_heads=2)
  validate_pool(pool, base)
  # Gradual stacking and MIDAS copy one fixed block; the noisy copy is not theirs.
  for mode in ("gradual_stacking", "midas"):
    fixed = stage_pool(template_for_mode(mode, noisy), 2, 3, 2)
    assert len(fixed) == 1 and "noisy" not in fixed.names[0]
  assert template_for_mode("adaptive", noisy) == noisy
  with pytest.raises(ValueError, match="noisy_copy_scale=-1"):
    StagePoolTemplate(noisy_copy_scale=-1.0)


def test_scratch_gets_the_same_training_flops():
  stages = StageSchedule(stage_layers=(2, 4), total_steps=100)
  base = TransformerConfig(num_layers=2)
  steps = scratch_steps(stages, base, 0.15)  # An encoder: its head at the masked share.
  final = flops_per_token(base.replace(num_layers=4), 0.15)
  budget = 50 * flops_per_token(base, 0.15) + 50 * final
  assert steps * final <= budget < (steps + 1) * final


def test_adaptive_run_commits_a_decision_per_stage_and_restarts_cleanly(tmp_path, data_dir,
                                                                       caplog):
  caplog.set_level(logging.INFO, logger="absl")
  config_io.parse(["experiments/gradual_tiny.gin"], TINY + [f"DATA_DIR = '{data_dir}'"])
  model_dir = str(tmp_path)
  the_plan = plan.build_plan(replicas=1)
  planned = the_plan.training_flops
  run_progress = progress.RunProgress(planned)
  summary = gradual_experiment(strategy(), model_dir, run_progress=run_progress)
  # The evaluations every stage's decision read are the plan's, FLOP for FLOP.
  assert summary["probe_eval_flops"] > 0
  assert summary["probe_eval_flops"] == pytest.approx(
      sum(p.flops for p in the_plan.phases if p.role == "decision evals"), rel=1e-9)
  # And so is everything it records spending (summary.md's compute line): base, probes,
  # evaluations, continuations. A forward pass is a third of an integral count, so the run and
  # the plan may round it apart in the last bit.
  assert summary["flops"]["total"] == pytest.approx(the_plan.total_flops, rel=1e-12)
  # Progress lines name the phase, and the run's done FLOPs end at exactly the plan's.
  lines = [r.getMessage() for r in caplog.records]
  for phase in ("stage 0 of 2 (base) step", "stage 1: probe copy_", "(1 of 2)",
                "stage 2: probe zero_top (3 of 3)", "stage 2: continue"):
    assert any(phase in line for line in lines), phase
  assert any(", run " in line and "% done)" in line for line in lines)
  assert run_progress.done_flops == pytest.approx(planned, rel=1e-9)
  assert summary["steps"] == 30 and len(summary["winners"]) == 2
  for stage, layers in ((1, 2), (2, 3)):
    record = read_decision(model_dir, stage)
    assert record.winner == summary["winners"][stage - 1]
    assert record.growth_step == 10 * stage
    assert record.candidates[record.winner].config["num_layers"] == layers
    assert os.path.exists(tmp_path / f"stage-{stage}" / "candidates" / record.winner / "ckpt")
  assert len(read_decision(model_dir, 2).candidates) == 3  # top, middle(=bottom), zero.
  texts = [(tmp_path / "decisions" / f"stage-{s}.json").read_text() for s in (1, 2)]
  run_progress = progress.RunProgress(planned)
  again = gradual_experiment(strategy(), model_dir, run_progress=run_progress)
  assert again["winners"] == summary["winners"]
  # A restarted run counts what its checkpoints and decisions hold: nothing is left to do.
  assert run_progress.done_flops == pytest.approx(planned, rel=1e-9)
  assert [(tmp_path / "decisions" / f"stage-{s}.json").read_text() for s in (1, 2)] == texts
  # Its report ends on the run's answer, as summary.md gives it: the last winner's final loss.
  text = open(report.build_report(model_dir)["report"]).read().rstrip().splitlines()
  last = summary["winners"][-1]
  assert text[-5:] == [
      f"Stage winners: {' → '.join(summary['winners'])}.", "",
      f"Winner `{last}` continued to step 30: final eval loss "
      f"**{summary['final_eval_loss']:.4f}** (stage-2/candidates/{last}).", "",
      "No scratch baseline in this run (gradual_experiment.mode = 'scratch' trains one at the "
      "same FLOPs in a model dir of its own), so it cannot say whether growing paid at equal "
      "compute."]


def test_fixed_midas_baseline_and_probe_longer_than_stage(tmp_path, data_dir):
  config_io.parse(["experiments/gradual_tiny.gin"], TINY + [f"DATA_DIR = '{data_dir}'"])
  summary = gradual_experiment(strategy(), str(tmp_path), mode="midas")
  assert summary["winners"] == ["copy_middle", "copy_middle"]
  config_io.parse(["experiments/gradual_tiny.gin"],
                  TINY + [f"DATA_DIR = '{data_dir}'", "ProbeSchedule.probe_steps = 11"])
  with pytest.raises(ValueError, match="longer than the shortest growth stage"):
    gradual_experiment(strategy(), str(tmp_path / "other"))
