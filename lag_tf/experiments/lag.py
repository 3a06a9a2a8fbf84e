"""`lag`: train a base model, probe every candidate of the pool for k steps, commit the best by
the selector rule, continue only the winner.

Model dir:
  metrics.jsonl, ckpt/             the base model
  candidates/<name>/               each candidate's checkpoint, metrics.jsonl, candidate.json
  decisions/stage-0.json           the committed decision
  summary.md                       the candidate table and the winner
"""

from __future__ import annotations

import os

import gin
from absl import logging

from lag_tf import gin_registry
from lag_tf import atomic_file
from lag_tf import model_dir_store as store
from lag_tf.analysis import summary as summary_lib
from lag_tf.data import LanguageModelingData
from lag_tf.experiments import scratch_baseline as scratch_lib
from lag_tf.growth import Pool, pool_targets
from lag_tf.interop.source import restore_or_train_base
from lag_tf.lag.compute import compute_by_phase, compute_text
from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.probe_cost import probe_budget
from lag_tf.lag.selector import SelectorRule
from lag_tf.lag.stage import (continue_winner, delete_loser_checkpoints, probe_and_commit,
                              summary_table)
from lag_tf.models import TransformerConfig
from lag_tf.records import config_hash
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import Trainer


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def lag_experiment(strategy, model_dir: str, pool: Pool = gin.REQUIRED,
                   base_steps: int = gin.REQUIRED, continue_steps: int = 0,
                   schedule: ProbeSchedule = None, rule: SelectorRule = None,
                   keep_loser_checkpoints: bool = True, scratch_baseline: bool = False,
                   run_progress: RunProgress = None) -> dict:
  """base_steps: steps of the small model before growth.
  continue_steps: steps the winner trains after its probe (the total after growth is
    probe_steps + continue_steps).
  keep_loser_checkpoints: False deletes the losers' checkpoints after the commit (their
    metrics stay).
  scratch_baseline: also train the grown config from scratch for the run's whole training
    FLOPs (probes included) in <model_dir>/scratch, and compare in summary.md.
  """
  schedule = schedule or ProbeSchedule()
  rule = rule or SelectorRule()
  base_config = TransformerConfig()
  targets = pool_targets(pool, base_config)
  data = LanguageModelingData()
  steps_after_growth = schedule.probe_steps + continue_steps

  with gin.config_scope("base"):  # The role scope (gin/runs/common.gin).
    base = Trainer(base_config, data, strategy, model_dir, train_steps=base_steps, name="base",
                   run_progress=run_progress)
  probe_budget(rule, schedule, targets, steps_after_growth, base.tokens_per_step,  # Before
               base.eval_batches * base.tokens_per_step, base.mask_probability,  # training.
               where="lag_experiment")
  restore_or_train_base(base, base_steps)
  point = GrowthPoint.from_trainer(base)
  chief = base.is_chief
  del base

  # One compiled engine per target shape serves every candidate and then the winner.
  trainers = CandidateTrainers(point, data, strategy, schedule, steps_after_growth,
                               run_progress)
  record = probe_and_commit(0, pool, targets, trainers, model_dir, model_dir, rule,
                            config_hash(gin.config_str()), chief)
  table = summary_table(record)
  print(table, flush=True)
  if not keep_loser_checkpoints and chief:
    delete_loser_checkpoints(record, model_dir)
  winner = continue_winner(record, pool, targets, trainers, model_dir)
  final = winner.evaluate()
  flops = compute_by_phase(base_config, point.step, [record], [targets[record.winner]],
                           [steps_after_growth], point.mask_probability)
  result = {"winner": record.winner, "final_eval_loss": final.eval_loss,
            "steps": winner.global_step, "flops": flops}
  tokens_per_step = winner.tokens_per_step
  del winner, trainers  # The scratch baseline builds a model of its own.
  baseline = "no scratch baseline in this run (lag_experiment.scratch_baseline = True adds one)"
  if scratch_baseline:
    target = targets[record.winner]
    steps = scratch_lib.scratch_steps(flops["total"], target, tokens_per_step,
                                      point.mask_probability)
    scratch = scratch_lib.train_scratch(target, data, strategy, model_dir, steps,
                                        run_progress)
    result["scratch_eval_loss"] = scratch.eval_loss
    baseline = summary_lib.scratch_comparison(
        final.eval_loss, final.eval_batch_losses, scratch.eval_loss,
        scratch.eval_batch_losses, steps)
  if chief:
    winner_checkpoint = store.checkpoint_dir(store.candidate_dir(model_dir, record.winner))
    atomic_file.write_text(store.summary_path(model_dir), summary_markdown(
        table, record.winner, result["steps"], result["final_eval_loss"],
        os.path.relpath(winner_checkpoint, model_dir), flops, baseline))
  logging.info("Done: %s", result)
  return result


def summary_markdown(table: str, winner: str, steps: int, final_eval_loss: float,
                     checkpoint: str, flops: dict, baseline: str) -> str:
  """summary.md of a `lag` run: the stage's table, the winner's continuation, the compute by
  phase and the scratch baseline's verdict (tests/test_readme.py holds README's annotated
  excerpt to it)."""
  return ("# LAG summary\n\n" + table + "\n\n" +
          f"winner `{winner}` continued to step {steps}: final eval loss {final_eval_loss:.4f} "
          f"(checkpoint: {checkpoint})\n\n"
          f"{compute_text(flops)}\n\n"
          f"{baseline}\n")
