"""A run's schedule: what it trains, in order, as one immutable value; the builders below are
the only place a run's structure is derived from its settings (docs/design.md, "Data flow of a
run", step 3). `train` is a base stage alone; a `lag` run one growth stage; a `gradual` run one
per depth (mode 'scratch': the final-size model alone).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence, Tuple

from lag_tf.growth import Pool, pool_targets
from lag_tf.lag.gradual import (MODES, StagePoolTemplate, StageSchedule, scratch_steps,
                                stage_pool, template_for_mode)
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import SelectorRule
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import flops_per_token
from lag_tf.records import DecisionRecord


@dataclasses.dataclass(frozen=True)
class BaseStage:
  """The model trained first: `steps` steps of `config` (None: Trainer.train_steps from gin, a
  `train` run's), built in gin role scope `scope` (gin/runs/common.gin) as Trainer `name`."""

  config: TransformerConfig
  steps: Optional[int]
  scope: str
  name: Optional[str]
  phase: str                  # The plan's name for it.
  progress_label: str = ""    # The run's progress phase while it trains ('' : none).
  steps_set_by: str = ""      # What sets its steps (the unused-binding report).
  # The optimizer policy: True stretches the role's WarmupDecaySchedule over this stage's own
  # steps (a model trained from scratch for a budget); False keeps gin's total_steps (a base
  # model, whose schedule the run file sets to its steps).
  own_schedule: bool = False


def scratch_stage(config: TransformerConfig, steps: int) -> BaseStage:
  """A `lag` run's scratch baseline: the grown config from random initialization for `steps`
  steps, its schedule over them, in the scratch/ role scope (executor: <model_dir>/scratch)."""
  return BaseStage(config, steps, "scratch", "scratch", "scratch baseline (equal FLOPs)",
                   steps_set_by="the run's FLOPs (scratch baseline)", own_schedule=True)


def baseline_steps(total_flops: float, config: TransformerConfig, tokens_per_step: int,
                   mask_probability: Optional[float]) -> int:
  """Steps of `config` that cost `total_flops` (the run's budget, probes included), at the run's
  mask probability (models/flops.flops_per_token)."""
  return max(1, int(round(total_flops / (tokens_per_step
                                         * flops_per_token(config, mask_probability)))))


@dataclasses.dataclass(frozen=True)
class GrowthStage:
  """Grow the previous stage's model by every candidate of `pool` (grown configs `targets`),
  probe them by `probe` and `rule`, commit the winner and train it `steps` steps after growth in
  all (its probe included). Stage `index` 0 is a one-shot run's (its candidates in the model
  dir), i >= 1 a gradual run's (in stage-<i>/)."""

  index: int
  pool: Pool
  targets: Dict[str, TransformerConfig]
  rule: SelectorRule
  probe: ProbeSchedule
  steps: int
  steps_set_by: str

  @property
  def where(self) -> str:
    """How errors name the stage."""
    return f"stage {self.index}" if self.index else "lag_experiment"


@dataclasses.dataclass(frozen=True)
class RunSchedule:
  kind: str                   # 'train', 'lag' or 'gradual' (the summary it writes).
  base: BaseStage
  stages: Tuple[GrowthStage, ...] = ()
  # Train the final model from scratch for the run's FLOPs after it (in <model_dir>/scratch).
  scratch_baseline: bool = False
  # The measured seed-to-seed spread of (winner - scratch) for this config: the baseline
  # verdict's noise beside the eval batches' (analysis.summary.scratch_comparison).
  seed_spread: float = 0.0
  keep_loser_checkpoints: bool = True
  mode: str = ""              # A gradual run's mode.

  @property
  def final_config(self) -> TransformerConfig:
    if not self.stages:
      return self.base.config
    return next(iter(self.stages[-1].targets.values()))


def compute_by_phase(schedule: RunSchedule, base_steps: int, records: Sequence[DecisionRecord],
                     mask_probability: Optional[float]) -> Dict[str, float]:
  """What a growth run spent, by phase, from its committed decisions (one per stage), in
  lag_tf.plan's convention: the base, the probes (every candidate's training), the evaluations
  the decisions read (forward passes), the winners' continuations; and their total. A winner's
  continuation is what its probe did not train of its stage's steps (a race that stops at step
  5 of k leaves k - 5 more to it)."""
  tokens = records[0].tokens_per_step
  continuations = [(stage.targets[r.winner], stage.steps
                    - int(r.candidates[r.winner].probe_steps_trained))
                   for r, stage in zip(records, schedule.stages)]
  phases = {"base": base_steps * tokens * flops_per_token(schedule.base.config, mask_probability),
            "probes": sum(float(r.probe_cost_flops) for r in records),
            "decision evals": sum(float(r.probe_eval_flops) for r in records),
            "continuation": sum(steps * tokens * flops_per_token(config, mask_probability)
                                for config, steps in continuations)}
  phases["total"] = sum(phases.values())
  return phases


def train_schedule(config: TransformerConfig, mask_probability: Optional[float]) -> RunSchedule:
  """`train`: the model alone, for Trainer.train_steps (gin's, read by the Trainer)."""
  del mask_probability  # Nothing to size.
  return RunSchedule("train", BaseStage(config, None, "", None, "train"))


def lag_schedule(config: TransformerConfig, mask_probability: Optional[float], pool: Pool,
                 base_steps: int, continue_steps: int = 0,
                 schedule: Optional[ProbeSchedule] = None, rule: Optional[SelectorRule] = None,
                 keep_loser_checkpoints: bool = True, scratch_baseline: bool = False,
                 seed_spread: float = 0.0) -> RunSchedule:
  """`lag`: the base, then one growth stage of probe_steps + continue_steps steps."""
  del mask_probability  # The baseline is sized from the run's own FLOPs.
  probe = schedule or ProbeSchedule()
  stage = GrowthStage(0, pool, pool_targets(pool, config), rule or SelectorRule(), probe,
                      probe.probe_steps + continue_steps,
                      "ProbeSchedule.probe_steps + lag_experiment.continue_steps (candidates)")
  base = BaseStage(config, base_steps, "base", "base", "base",
                   steps_set_by="lag_experiment.base_steps (base)")
  if seed_spread < 0:
    raise ValueError(f"lag_experiment.seed_spread={seed_spread}: expected >= 0")
  return RunSchedule("lag", base, (stage,), scratch_baseline=scratch_baseline,
                     seed_spread=seed_spread, keep_loser_checkpoints=keep_loser_checkpoints)


def gradual_schedule(config: TransformerConfig, mask_probability: Optional[float],
                     mode: str = "adaptive", stages: Optional[StageSchedule] = None,
                     template: Optional[StagePoolTemplate] = None,
                     schedule: Optional[ProbeSchedule] = None,
                     rule: Optional[SelectorRule] = None,
                     keep_loser_checkpoints: bool = True) -> RunSchedule:
  """`gradual`: stage 0 trains the base, stage i grows it by stage i's pool (lag.gradual's
  template for `mode`); mode 'scratch' trains the final model alone for the same training
  FLOPs. ValueError, before anything trains, for a base of the wrong depth, probes longer than
  a growth stage or a stage pool that cannot grow its model."""
  if mode not in MODES:
    raise ValueError(f"gradual_experiment.mode={mode!r}: expected one of {MODES}")
  probe, stages = schedule or ProbeSchedule(), stages or StageSchedule()
  template = template_for_mode(mode, template or StagePoolTemplate())
  steps, layers = stages.steps(), list(stages.stage_layers)
  if config.num_layers != layers[0]:
    raise ValueError(f"StageSchedule.stage_layers starts at {layers[0]} layers but the model "
                     f"has num_layers={config.num_layers}")
  if mode == "scratch":
    return RunSchedule("gradual", BaseStage(
        config.replace(num_layers=layers[-1]), scratch_steps(stages, config, mask_probability),
        "scratch", "scratch", "scratch",
        steps_set_by="the scratch budget (StageSchedule's FLOPs)", own_schedule=True),
                       mode=mode)
  if probe.probe_steps > min(steps[1:]):
    raise ValueError(f"ProbeSchedule.probe_steps={probe.probe_steps} is longer than the "
                     f"shortest growth stage ({min(steps[1:])} steps)")
  set_by = "StageSchedule (each stage's steps)"
  base = BaseStage(config, steps[0], "base", "stage-0", "stage 0: base",
                   progress_label=f"stage 0 of {len(layers) - 1} (base)", steps_set_by=set_by)
  growths, grown = [], config
  for i in range(1, len(layers)):
    pool = stage_pool(template, layers[i - 1], layers[i], i)
    targets = pool_targets(pool, grown, f"stage {i}: ")
    growths.append(GrowthStage(i, pool, targets, rule or SelectorRule(), probe, steps[i],
                               set_by))
    grown = next(iter(targets.values()))  # Every candidate of a stage grows to one shape.
  return RunSchedule("gradual", base, tuple(growths),
                     keep_loser_checkpoints=keep_loser_checkpoints, mode=mode)
