"""Probe wall time against probe FLOPs: what probing a pool costs in time, next to what its
FLOPs would cost at the steady training rate measured in the same run.

Runs a `lag` experiment's phases as `lag_experiment` does (base model, probing of the whole
pool, the winner's continuation) in a scratch model dir, times the probing phase, and measures
the steady rate on the winner's continuation (same target shape as the probes; the median of
its per-loop rates, which exclude evals and checkpoints). Then

  probe_wall_overhead = probe wall time / (probe FLOPs / steady FLOP/s)

where probe FLOPs are what the probes compute: their training steps plus their evaluations
(forward passes on the held-out batches at every probe eval step; a forward pass is a third of
a training step's count, lag_tf.models.flops). 1.0 means probing costs exactly its FLOPs at the
training rate; everything above is building, tracing, growth, checkpointing, the data pipeline
and evaluations running slower than training. The line before prints the ratio with training
FLOPs alone in the denominator (`probe_cost_flops`, what budgets charge): evaluations then count
as overhead, so that ratio cannot fall below 1 + eval FLOPs / training FLOPs (1.36 for
lag_quickstart.gin's 4 evals of 8 batches per 30-step probe).

  python benchmarks/probe_wall.py [--gin_file=gin/experiments/lag_quickstart.gin]
      [--gin_bindings=...] [--model_dir=DIR]

Last line: `probe_wall_overhead=<x>`. On a shared machine the number is noisy: run it twice.
It probes the whole pool for k steps (FULL_PROBING, the setting its CHANGELOG figures were
measured in; --gin_bindings come after and override it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gin  # noqa: E402

from lag_tf import config_io  # noqa: E402
from lag_tf import model_dir_store as store  # noqa: E402
from lag_tf import configurables  # noqa: E402,F401  Registers every configurable.
from lag_tf.data import LanguageModelingData  # noqa: E402
from lag_tf.growth import validate_pool  # noqa: E402
from lag_tf.lag.probe import CandidateTrainers, GrowthPoint  # noqa: E402
from lag_tf.lag.schedule import ProbeSchedule  # noqa: E402
from lag_tf.lag.selector import SelectorRule  # noqa: E402
from lag_tf.lag.stage import continue_winner, probe_and_commit  # noqa: E402
from lag_tf.models import TransformerConfig  # noqa: E402
from lag_tf.models.flops import forward_flops_per_token  # noqa: E402
from lag_tf.training import strategy as strategy_lib  # noqa: E402
from lag_tf.training.trainer import Trainer  # noqa: E402


def steady_steps_per_second(metrics_path: str, after_step: int) -> float:
  """Median per-loop training rate logged after `after_step` (evals and saves excluded)."""
  rates = [r.steps_per_second for r in store.read_metrics(metrics_path)
           if r.step > after_step and r.steps_per_second is not None]
  if not rates:
    raise ValueError(f"no training rates after step {after_step} in {metrics_path}; give the "
                     "winner a continuation of at least two loops (lag_experiment.continue_steps)")
  return statistics.median(rates)


def overhead(probe_seconds: float, probe_flops: float, steady_flops_per_second: float) -> float:
  return probe_seconds / (probe_flops / steady_flops_per_second)


def run(model_dir: str) -> dict:
  """The lag experiment's phases, with the probing timed; returns the measurements."""
  bound = gin.get_bindings("lag_experiment")  # References and macros resolved.
  pool, base_steps = bound["pool"], bound["base_steps"]
  continue_steps = bound["continue_steps"]
  schedule, rule = ProbeSchedule(), SelectorRule()  # As bound for lag_experiment.
  base_config = TransformerConfig()
  targets = validate_pool(pool, base_config)
  strategy = strategy_lib.make_strategy()
  data = LanguageModelingData()
  steps_after_growth = schedule.probe_steps + continue_steps

  started = time.perf_counter()
  with gin.config_scope("base"):  # As lag_experiment builds it.
    base = Trainer(base_config, data, strategy, model_dir, train_steps=base_steps, name="base")
  base.restore()
  if base.global_step < base_steps:
    base.train()
  point = GrowthPoint.from_trainer(base)
  del base
  base_seconds = time.perf_counter() - started

  started = time.perf_counter()
  record = probe_and_commit(
      0, pool, targets, CandidateTrainers(point, data, strategy, schedule, steps_after_growth),
      model_dir, model_dir, rule, "probe_wall_benchmark", True)
  probe_seconds = time.perf_counter() - started

  started = time.perf_counter()
  # Engines of its own, as the probes' are gone: the continuation's time includes a build.
  winner = continue_winner(
      record, pool, targets, CandidateTrainers(point, data, strategy, schedule,
                                               steps_after_growth), model_dir)
  continue_seconds = time.perf_counter() - started
  eval_seconds = []
  for _ in range(5):  # Warm evaluations of the target shape: what one probe eval costs.
    eval_started = time.perf_counter()
    winner.evaluate()
    eval_seconds.append(time.perf_counter() - eval_started)

  name = record.winner
  rate = steady_steps_per_second(
      store.metrics_path(store.candidate_dir(model_dir, name)),
      point.step + schedule.probe_steps + 1)
  steady_flops = rate * record.tokens_per_step * winner.flops_per_token
  # Every evaluation a probe ran (its eval_losses: one per eval step it reached).
  evals = sum(len(c.eval_losses) for c in record.candidates.values())
  eval_tokens = winner.eval_batches * winner.global_batch_size
  eval_flops = sum(len(c.eval_losses) * eval_tokens * targets[n].max_len
                   * forward_flops_per_token(targets[n], winner.mask_probability)
                   for n, c in record.candidates.items())
  return {"winner": name, "candidates": len(pool.names), "base_seconds": base_seconds,
          "probe_seconds": probe_seconds, "continue_seconds": continue_seconds,
          "probe_flops": float(record.probe_cost_flops), "probe_eval_flops": eval_flops,
          "probe_cost_steps": int(record.probe_cost_steps), "probe_evals": evals,
          "steady_steps_per_second": rate, "steady_flops_per_second": steady_flops,
          "probe_eval_seconds": statistics.median(eval_seconds) * evals,
          "eval_losses": {n: c.to_json()["eval_losses"] for n, c in record.candidates.items()}}


# Every candidate for k steps, evaluated at 0, 10, 20 and 30, whatever the file's rule.
FULL_PROBING = ["SelectorRule.rule = 'lag'", "SelectorRule.probe_budget_share = 0.0",
                "ProbeSchedule.eval_steps = (0, 10, 20, 30)",
                "lag_experiment.continue_steps = 120"]


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--gin_file", default="gin/experiments/lag_quickstart.gin")
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--model_dir", default=None,
                      help="an empty dir to run in (default: a temporary dir, removed after)")
  args = parser.parse_args()
  config_io.parse([args.gin_file], FULL_PROBING + args.gin_bindings)
  scratch = args.model_dir is None
  model_dir = tempfile.mkdtemp(prefix="probe_wall_") if scratch else args.model_dir
  try:
    m = run(model_dir)
  finally:
    if scratch:
      shutil.rmtree(model_dir, ignore_errors=True)
  rate = m["steady_flops_per_second"]
  train_ideal = m["probe_flops"] / rate
  eval_ideal = m["probe_eval_flops"] / rate
  print(f"{args.gin_file}: {m['candidates']} candidates, {m['probe_cost_steps']} probe steps, "
        f"{m['probe_evals']} probe evaluations, winner {m['winner']}")
  print(f"base {m['base_seconds']:.1f}s  probes {m['probe_seconds']:.1f}s  "
        f"continuation {m['continue_seconds']:.1f}s")
  print(f"steady rate {m['steady_steps_per_second']:.2f} steps/s = {rate / 1e9:.2f} GFLOP/s; "
        f"probe training {m['probe_flops'] / 1e12:.3f} TFLOPs = {train_ideal:.1f}s, probe "
        f"evaluations {m['probe_eval_flops'] / 1e12:.3f} TFLOPs = {eval_ideal:.1f}s at that rate")
  print(f"probe evaluations took ~{m['probe_eval_seconds']:.1f}s (median of 5 warm evals x "
        f"{m['probe_evals']}); the rest of the probe time beyond its training FLOPs: "
        f"{m['probe_seconds'] - m['probe_eval_seconds'] - train_ideal:.1f}s")
  print(f"probe_wall_overhead_training_flops_only="
        f"{overhead(m['probe_seconds'], m['probe_flops'], rate):.3f}")
  print(f"probe_wall_overhead="
        f"{overhead(m['probe_seconds'], m['probe_flops'] + m['probe_eval_flops'], rate):.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
