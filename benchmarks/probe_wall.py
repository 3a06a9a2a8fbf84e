"""Probe wall time against probe FLOPs: what probing a pool costs in time, next to what its
training FLOPs would cost at the steady training rate measured in the same run.

Runs a `lag` experiment's phases as `lag_experiment` does (base model, probing of the whole
pool, the winner's continuation) in a scratch model dir, times the probing phase, and measures
the steady rate on the winner's continuation (same target shape as the probes; the median of
its per-loop rates, which exclude evals and checkpoints). Then

  probe_wall_overhead = probe wall time / (probe FLOPs / steady FLOP/s)

1.0 means probing costs exactly its training FLOPs; everything above is per-candidate building,
tracing, growth, evaluation and checkpointing. The eval share is estimated from one warm
evaluation of the winner (probe evals are counted in no FLOP budget, see DESIGN.md).

  python benchmarks/probe_wall.py [--gin_file=gin/experiments/lag_quickstart.gin]
      [--gin_bindings=...] [--model_dir=DIR]

Last line: `probe_wall_overhead=<x>`. On a shared machine the number is noisy: run it twice.
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
from lag_tf.data import LanguageModelingData  # noqa: E402
from lag_tf.growth import validate_pool  # noqa: E402
from lag_tf.lag.probe import GrowthPoint  # noqa: E402
from lag_tf.lag.schedule import ProbeSchedule  # noqa: E402
from lag_tf.lag.selector import SelectorRule  # noqa: E402
from lag_tf.lag.stage import continue_winner, probe_and_commit  # noqa: E402
from lag_tf.models import TransformerConfig  # noqa: E402
from lag_tf.models.flops import training_flops_per_token  # noqa: E402
from lag_tf.training import strategy as strategy_lib  # noqa: E402
from lag_tf.training.metrics import read_metrics  # noqa: E402
from lag_tf.training.trainer import Trainer  # noqa: E402


def steady_steps_per_second(metrics_path: str, after_step: int) -> float:
  """Median per-loop training rate logged after `after_step` (evals and saves excluded)."""
  rates = [r["steps_per_second"] for r in read_metrics(metrics_path)
           if r["step"] > after_step and "steps_per_second" in r]
  if not rates:
    raise ValueError(f"no training rates after step {after_step} in {metrics_path}; give the "
                     "winner a continuation of at least two loops (lag_experiment.continue_steps)")
  return statistics.median(rates)


def overhead(probe_seconds: float, probe_flops: float, steady_flops_per_second: float) -> float:
  return probe_seconds / (probe_flops / steady_flops_per_second)


def run(model_dir: str) -> dict:
  """The lag experiment's phases, with the probing timed; returns the measurements."""
  pool = gin.query_parameter("lag_experiment.pool").scoped_configurable_fn()
  base_steps = gin.query_parameter("lag_experiment.base_steps")
  continue_steps = gin.query_parameter("lag_experiment.continue_steps")
  schedule, rule = ProbeSchedule(), SelectorRule()  # As bound for lag_experiment.
  base_config = TransformerConfig()
  targets = validate_pool(pool, base_config)
  strategy = strategy_lib.make_strategy()
  data = LanguageModelingData()
  steps_after_growth = schedule.probe_steps + continue_steps

  started = time.perf_counter()
  base = Trainer(base_config, data, strategy, model_dir, train_steps=base_steps, name="base")
  base.restore()
  if int(base.step.numpy()) < base_steps:
    base.train()
  point = GrowthPoint.from_trainer(base)
  del base
  base_seconds = time.perf_counter() - started

  started = time.perf_counter()
  record = probe_and_commit(0, pool, targets, point, data, strategy, model_dir, model_dir,
                            schedule, rule, steps_after_growth, "probe_wall_benchmark", True)
  probe_seconds = time.perf_counter() - started

  started = time.perf_counter()
  winner = continue_winner(record, pool, targets, point, data, strategy, model_dir, schedule,
                           steps_after_growth)
  continue_seconds = time.perf_counter() - started
  eval_started = time.perf_counter()
  winner.evaluate()
  eval_seconds = time.perf_counter() - eval_started

  name = record.winner
  rate = steady_steps_per_second(
      os.path.join(model_dir, "candidates", name, "metrics.jsonl"),
      point.step + schedule.probe_steps + 1)
  steady_flops = rate * record.tokens_per_step * training_flops_per_token(targets[name])
  evals_per_candidate = len(schedule.probe_eval_steps())
  return {"winner": name, "candidates": len(pool.names), "base_seconds": base_seconds,
          "probe_seconds": probe_seconds, "continue_seconds": continue_seconds,
          "probe_flops": float(record.probe_cost_flops),
          "probe_cost_steps": int(record.probe_cost_steps),
          "steady_steps_per_second": rate, "steady_flops_per_second": steady_flops,
          "probe_eval_seconds": eval_seconds * evals_per_candidate * len(pool.names),
          "eval_losses": {n: c.to_json()["eval_losses"] for n, c in record.candidates.items()}}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--gin_file", default="gin/experiments/lag_quickstart.gin")
  parser.add_argument("--gin_bindings", action="append", default=[])
  parser.add_argument("--model_dir", default=None,
                      help="an empty dir to run in (default: a temporary dir, removed after)")
  args = parser.parse_args()
  config_io.parse([args.gin_file], args.gin_bindings)
  scratch = args.model_dir is None
  model_dir = tempfile.mkdtemp(prefix="probe_wall_") if scratch else args.model_dir
  try:
    m = run(model_dir)
  finally:
    if scratch:
      shutil.rmtree(model_dir, ignore_errors=True)
  ideal = m["probe_flops"] / m["steady_flops_per_second"]
  print(f"{args.gin_file}: {m['candidates']} candidates, {m['probe_cost_steps']} probe steps, "
        f"winner {m['winner']}")
  print(f"base {m['base_seconds']:.1f}s  probes {m['probe_seconds']:.1f}s  "
        f"continuation {m['continue_seconds']:.1f}s")
  print(f"steady rate {m['steady_steps_per_second']:.2f} steps/s = "
        f"{m['steady_flops_per_second'] / 1e9:.2f} GFLOP/s; probe FLOPs "
        f"{m['probe_flops'] / 1e12:.3f} TFLOPs = {ideal:.1f}s at that rate")
  rate = m["steady_flops_per_second"]
  without_evals = overhead(m["probe_seconds"] - m["probe_eval_seconds"], m["probe_flops"], rate)
  print(f"probe evals (estimated from one warm eval): {m['probe_eval_seconds']:.1f}s; "
        f"overhead without them {without_evals:.3f}")
  print(f"probe_wall_overhead={overhead(m['probe_seconds'], m['probe_flops'], rate):.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
