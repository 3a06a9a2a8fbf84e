"""Every experiment gin file's plan against its own run (issue: "plan = run").

Each file under gin/experiments/ runs for real on a tiny override (a 2-layer width-32 model on
the small corpus, a few steps per phase, the file's own kind, pool, rule, probe schedule and
budgets) and its plan, built by lag_tf.plan from the same parsed config, must price it: the
plan's total (training, the evaluations decisions read, a scratch baseline) is at least what the
run spent and at most 10% above it. Exactly equal when nothing stops early; a race that stops
before its costliest end is below its plan.

The run's spending is read from what it records: the FLOPs its result reports by phase (the
decisions' probe costs included), its scratch baseline's training (the run's progress counts
every training step of every Trainer), a study's candidates.
"""

import glob
import os

import gin
import pytest

from lag_tf import config_io
from lag_tf import configurables  # noqa: F401  Registers every configurable.
from lag_tf import plan as plan_lib
from lag_tf.experiments.registry import run_experiment
from lag_tf.training import progress
from lag_fixtures import strategy

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN_FILES = sorted(os.path.relpath(p, os.path.join(REPO, "gin"))
                   for p in glob.glob(os.path.join(REPO, "gin", "experiments", "*.gin")))

# Any file: the small corpus, a 2-layer width-32 model (targets of width pools twice that), a
# batch of 8 and 2 evaluation batches, a float32 CPU run. No periodic evaluations or
# checkpoints (the plan does not charge them; the evaluations decisions read are charged and
# stay, and every phase still checkpoints at its end).
TINY = ["include 'data/stdlib_corpus_small.gin'", "SEQUENCE_LENGTH = 32", "NUM_LAYERS = 2",
        "D_MODEL = 32", "NUM_HEADS = 2", "D_FF = 64", "TARGET_LAYERS = 4",
        "TARGET_D_MODEL = 64", "TARGET_HEADS = 4", "TARGET_D_FF = 128",
        "TransformerConfig.dtype_policy = 'float32'", "Trainer.global_batch_size = 8",
        "Trainer.steps_per_loop = 4", "Trainer.eval_every = 0", "Trainer.eval_batches = 2",
        "Trainer.checkpoint_every = 1000", "Trainer.jit_compile = False",
        "WarmupDecaySchedule.warmup_steps = 2", "ProbeSchedule.rewarmup_steps = 2"]
LAG_PROBE_STEPS = 4
# Each kind's phases shortened; what the file declares about its decisions stays.
BY_KIND = {
    "train": ["TRAIN_STEPS = 6"],
    "grow": ["BASE_STEPS = 4"],
    # continue_steps: _lag_continuation.
    "lag": ["BASE_STEPS = 4", f"ProbeSchedule.probe_steps = {LAG_PROBE_STEPS}",
            "ProbeSchedule.eval_steps = (0, 2, 4)", "base_model.source = None"],
    "study": ["BASE_STEPS = 4", "study_experiment.total_steps = 4",
              "study_experiment.dense_every = 2", "study_experiment.dense_until = 4",
              "study_experiment.log_points = 0", "study_experiment.seeds = (0,)",
              # One candidate of the pool (worker 0 of many takes every n-th).
              "study_experiment.worker_count = 64"],
    "gradual": ["NUM_LAYERS = 1", "STAGE_LAYERS = (1, 2)", "StageSchedule.stage_layers = (1, 2)",
                "StageSchedule.stage_steps = (4, 8)", "WarmupDecaySchedule.total_steps = 4",
                "PROBE_STEPS = 2", "ProbeSchedule.probe_steps = 2",
                "ProbeSchedule.eval_steps = (0, 2)"],
}


def _kind_and_shrink(gin_file):
  """The file's experiment kind, and its shortened phases. A `lag` file's continuation keeps
  its ratio to the probe (a race without a probe budget is planned at its worst case, every
  candidate to k, so the plan's margin over a race that stops early is the probes' share of
  the file's run), at least 110 steps (a probe budget sized for the file fits)."""
  config_io.parse([gin_file], TINY + ["DATA_DIR = None"])
  kind = plan_lib.arguments(run_experiment)["kind"]
  if kind != "lag":
    return kind, BY_KIND[kind]
  probe = gin.query_parameter("ProbeSchedule.probe_steps")
  continuation = gin.query_parameter("lag_experiment.continue_steps")
  steps = max(110, round(continuation * LAG_PROBE_STEPS / probe))
  return kind, BY_KIND[kind] + [f"lag_experiment.continue_steps = {steps}"]


def _spent(kind, result, run_progress):
  """What the run computed: training (every Trainer's steps, the run's progress) and the
  evaluations its decisions read (their records)."""
  if kind == "study":
    return result["flops"]["total"]
  flops = result.get("flops")  # A grow run trains its base alone.
  evals = flops["decision evals"] if isinstance(flops, dict) else 0.0
  return run_progress.done_flops + evals


@pytest.mark.parametrize("gin_file", GIN_FILES)
def test_the_plan_prices_the_run_of_every_experiment_gin(gin_file, tmp_path, data_dir):
  kind, shrink = _kind_and_shrink(gin_file)
  config_io.parse([gin_file], TINY + [f"DATA_DIR = '{data_dir}'"] + shrink)
  planned = plan_lib.build_plan(replicas=1)
  run_progress = progress.RunProgress(planned.training_flops)
  result = run_experiment(strategy(), str(tmp_path), run_progress=run_progress)
  spent = _spent(kind, result, run_progress)
  assert spent > 0
  assert spent <= planned.total_flops <= 1.10 * spent, (kind, spent, planned.total_flops)
