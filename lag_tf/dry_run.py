"""`lag_tf.main --dry_run`: everything a run checks before training, and its plan, without
building a dataset pipeline, training, or writing into the model dir.

Checks: the gin config (parsed by the binary), the strategy setting, the experiment's arguments,
pools, probe and stage schedules and Trainer settings (lag_tf.plan), the dataset (prepared in
its data dir, or the embedded corpus, which a run prepares itself), and the model dir (a
different config.gin or a live run.lock refuse a real run). Returns the plan text; raises
ValueError (or ConfigError / LockHeldError) with the one-line message a run would give.

The wall-time estimate divides the plan's training FLOPs by a throughput: measured by timing a
few training steps of the first phase's model (`calibrate`; this builds that model and reads a
few batches, in a temporary dir), given, or the assumed ASSUMED_FLOPS_PER_SECOND.
"""

from __future__ import annotations

import json
import os
import tempfile
import math
from typing import NamedTuple, Optional, Tuple

import tensorflow as tf
import tensorflow_datasets as tfds

from lag_tf import config_io, console, plan as plan_lib, run_lock
from lag_tf.data import LanguageModelingData
from lag_tf.data import tfds_loading
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import CONVENTION
from lag_tf.training import determinism
from lag_tf.training import memory
from lag_tf.training import strategy as strategy_lib
from lag_tf.training.trainer import Trainer, mask_probability_of

# A 2-core CPU trains the tiny encoders at roughly this rate (benchmarks/throughput.py measured
# 165 GFLOP/s for BERT-mini, CHANGELOG.md; the 2 x 128 models reach less). Say so whenever it
# is used.
ASSUMED_FLOPS_PER_SECOND = 1e11


def strategy_settings() -> Tuple[Optional[tf.distribute.Strategy], Optional[int], str]:
  """(strategy or None, replicas or None, description). Local strategies are created (cheap);
  'tpu' and 'multi_worker' are checked without connecting to their hardware or peers."""
  settings = plan_lib.arguments(strategy_lib.make_strategy)
  name = settings["name"]
  strategy_lib.check_setting(name, settings["tpu_address"])
  if name == "tpu":
    return None, None, f"tpu at {settings['tpu_address']!r} (replicas known on the TPU)"
  if name == "multi_worker":
    try:
      cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except ValueError as error:
      raise ValueError(f"TF_CONFIG is not JSON: {error}") from None
    workers = len(cluster.get("worker", [])) + len(cluster.get("chief", []))
    return None, None, f"multi_worker with {workers or 'no'} workers in TF_CONFIG"
  strategy_lib.configure_devices()
  strategy = strategy_lib.make_strategy()
  return strategy, strategy.num_replicas_in_sync, (
      f"{name} ({strategy.num_replicas_in_sync} replica(s))")


def data_status(data: LanguageModelingData) -> str:
  """Where the data is, or ValueError if a run could not read it. A remote data dir that cannot
  be reached from here (no network or credentials) is reported, not refused."""
  where = data.data_dir or "tfds' default data dir"
  try:
    builder = tfds.builder(data.dataset_name, data_dir=data.data_dir)
    prepared = builder.is_prepared()
  except (tfds.core.registered.DatasetNotFoundError, ValueError) as error:
    raise ValueError(f"unknown tfds dataset {data.dataset_name!r}: "
                     f"{str(error).splitlines()[0]}") from None
  except (tf.errors.OpError, OSError) as error:
    return f"{data.dataset_name} in {where}: not checked ({console.one_line(error)[:120]})"
  if not prepared:
    if tfds_loading.base_name(data.dataset_name) in tfds_loading.OFFLINE_PREPARABLE:
      return (f"{data.dataset_name} in {where}: not prepared yet; the run prepares it from "
              "this machine's standard library first (no download)")
    raise ValueError(f"dataset {builder.info.full_name} is not prepared in data_dir="
                     f"{str(builder.data_dir_root)!r}")
  for split in (data.train_split, data.eval_split):
    if tfds_loading.split_num_bytes(builder, split) is None and split not in builder.info.splits:
      raise ValueError(f"cannot read split {split!r} of {builder.info.full_name}")
  if data.text_key not in builder.info.features:
    raise ValueError(f"text_key {data.text_key!r} is not a feature of {builder.info.full_name}")
  return f"{builder.info.full_name} prepared in {builder.data_dir_root}"


def model_dir_status(model_dir: str, allow_config_change: bool) -> str:
  """What a run would find in the model dir (read only); raises what it would refuse."""
  try:
    owner = run_lock.read_lock(model_dir)
    previous = config_io.read_config(model_dir)
  except (tf.errors.OpError, OSError) as error:
    return f"{model_dir}: not checked ({console.one_line(error)[:120]})"
  if owner is not None and not run_lock.is_stale(owner):
    raise run_lock.LockHeldError(run_lock.describe_owner(model_dir, owner))
  if previous is None:
    return f"{model_dir}: new run"
  if config_io.same_config(model_dir, previous, allow_config_change):
    return f"{model_dir}: same config; a run resumes from its checkpoints"
  return f"{model_dir}: different config.gin, kept as config.gin.<n> (--allow_config_change)"


def memory_status(plan: plan_lib.Plan, strategy, replicas: Optional[int],
                  data: LanguageModelingData) -> str:
  """The step-memory estimate of the plan's largest model per replica (training/memory.py),
  checked against a replica's memory as the run's Trainers check it: StepMemoryError if it
  cannot fit."""
  batch = max(1, plan.trainer["global_batch_size"] // (replicas or 1))
  estimates = []
  for config in dict.fromkeys(p.config for p in plan.phases):
    estimates.append((memory.estimate_step_memory(config, batch, mask_probability_of(config, data)),
                      config))
  estimate, config = max(estimates, key=lambda pair: pair[0].train_peak)
  if strategy is not None:
    budget, source = memory.replica_memory(strategy)
  else:
    budget, source = None, "a replica's memory is known on the hardware"
  if plan_lib.arguments(memory.check_step_memory, skip=_MEMORY_ARGUMENTS)["enabled"]:
    memory.check_estimate(estimate, budget, source)
  text = memory.describe(estimate, budget, source)
  return f"{text}; the largest model is {shape_text(config)}" if len(estimates) > 1 \
      else text


_MEMORY_ARGUMENTS = ("config", "global_batch_size", "strategy", "mask_probability")


class RunCheck(NamedTuple):
  plan: plan_lib.Plan
  data: LanguageModelingData
  data_status: str
  memory_status: str


def check_run(strategy, replicas: Optional[int]) -> RunCheck:
  """What a run refuses before training, but the model dir: the plan (lag_tf.plan), the
  dataset and a step's memory. Raises the ValueError a run would raise (lag_tf.main calls it
  before it logs anything)."""
  data = LanguageModelingData()
  plan = plan_lib.build_plan(replicas, data)
  return RunCheck(plan, data, data_status(data), memory_status(plan, strategy, replicas, data))


def calibrate(plan: plan_lib.Plan, strategy, data: LanguageModelingData,
              loops: int = 2) -> float:
  """Training FLOP/s of the plan's first phase's model, timed by a Trainer built in a
  temporary dir (Trainer.measure_flops_per_second: no evaluation, no checkpoint)."""
  phase = next(p for p in plan.phases if p.steps > 0)
  with tempfile.TemporaryDirectory(prefix="lag_tf_calibrate_") as directory:
    trainer = Trainer(phase.config, data, strategy, directory, name="calibrate")
    return trainer.measure_flops_per_second(loops)


def run(model_dir: str, calibrate_throughput: bool, flops_per_second: Optional[float],
        allow_config_change: bool) -> Tuple[str, plan_lib.Plan]:
  """The dry run: (text to print, plan). Raises the errors a real run would raise."""
  strategy, replicas, strategy_text = strategy_settings()
  determinism.configure_determinism()
  checked = check_run(strategy, replicas)
  plan, data = checked.plan, checked.data
  lines = [f"strategy: {strategy_text}", f"data: {checked.data_status}",
           f"model dir: {model_dir_status(model_dir, allow_config_change)}",
           checked.memory_status]
  if calibrate_throughput:
    if strategy is None:
      raise ValueError("--dry_run=calibrate needs a strategy of this machine; run it on the "
                       "TPU VM or worker, or give --dry_run_flops_per_second")
    flops_per_second = calibrate(plan, strategy, data)
    source = f"measured now on {plan.phases[0].name}'s model"
  elif flops_per_second:
    source = "given by --dry_run_flops_per_second"
  else:
    flops_per_second = ASSUMED_FLOPS_PER_SECOND
    source = ("assumed, a 2-core CPU; measure with --dry_run=calibrate or give "
              "--dry_run_flops_per_second")
  lines.append(format_plan(plan, flops_per_second, source))
  return "\n".join(lines), plan


def _duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  if seconds < 120:
    return f"{seconds:.0f} s"
  if seconds < 2 * 3600:
    return f"{seconds / 60:.1f} min"
  return f"{seconds / 3600:.1f} h"


def shape_text(config: TransformerConfig) -> str:
  return (f"{config.kind} {config.num_layers}x{config.d_model} h{config.num_heads} "
          f"ff{config.d_ff} L{config.max_len}")


def format_plan(plan: plan_lib.Plan, flops_per_second: float, throughput_source: str) -> str:
  """The plan as a table, then totals, probe share and the wall-time estimate."""
  rows = [("phase", "model", "params", "steps", "tokens", "FLOPs", "time")]
  for p in plan.phases:
    steps = f"{p.count} x {p.steps}" if p.count > 1 else f"{p.steps}"
    steps += " evals" if p.forward_only else ""
    rows.append((p.name, shape_text(p.config), f"{p.params:,}", steps, f"{p.tokens:,}",
                 plan_lib.flops_text(p.flops), _duration(p.flops / flops_per_second)))
  widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
  lines = [f"plan: run_experiment.kind={plan.kind!r}, {plan.trainer['global_batch_size']} "
           f"examples per step"]
  for index, row in enumerate(rows):
    lines.append("  " + "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w)
                                  for i, (cell, w) in enumerate(zip(row, widths))))
    if index == 0:
      lines.append("  " + "  ".join("-" * w for w in widths))
  tokens = sum(p.tokens for p in plan.phases if not p.forward_only)
  lines.append(f"total: {tokens:,} training tokens, {plan_lib.flops_text(plan.total_flops)} (training, "
               f"lag_tf.models.flops: {CONVENTION}; the evaluations decisions read: a forward "
               "pass, a third of that); deciding (probes "
               f"and their evaluations) {plan_lib.flops_text(plan.probe_flops)} = {plan.probe_share:.1%} "
               "of the run"
               + (" (its scratch baseline apart)" if any(p.role == "baseline" for p in
                                                        plan.phases) else ""))
  seconds = plan.total_flops / flops_per_second if flops_per_second > 0 else float("nan")
  lines.append(f"estimated wall time: {_duration(seconds)} at "
               f"{flops_per_second / 1e9:,.1f} GFLOP/s ({throughput_source}); evaluation, "
               "growth and compilation not included")
  return "\n".join(lines)
