"""A run's plan, computed from the parsed gin config without building data or models
(docs/design.md, "Data flow of a run", steps 2 and 3: the run's own schedule, priced by
`schedule_phases`, for `train`, `lag` and `gradual`; planners of their own for `grow` and
`study`). `build_plan` reads what the experiment would read (run_experiment.kind, its
arguments, TransformerConfig, the Trainer settings of each role scope), and checks with the
runners' own functions (trainer_arguments, the schedule builders, grown_targets,
worker_candidates, probe_budget), so a dry run refuses what a run refuses. For lag_tf.bindings'
unused-binding report it also says which parameters the experiment sets itself: Trainer's from
the phases (each names the setting its steps come from), StagePoolTemplate's from
lag.gradual.MODE_TEMPLATES, the study's replaced ProbeSchedule fields and a scratch run's unused
growth settings from the planners below.

Successive halving drops candidates by their loss, which a plan cannot know: its rungs count the
survivors (exact) at the costliest candidate's FLOPs (exact when all candidates share a target,
as LAG pools do).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
from typing import Dict, List, Optional, Tuple

import gin

from lag_tf.data import LanguageModelingData
from lag_tf.experiments import grow as grow_lib
from lag_tf.experiments import registry
from lag_tf.experiments import study as study_lib
from lag_tf.experiments.schedule import (GrowthStage, RunSchedule, baseline_steps,
                                         scratch_stage)
from lag_tf.growth import pool_targets
from lag_tf.lag.gradual import MODE_TEMPLATES
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.probe_cost import (StageCharge, costliest, probe_budget, stage_charge,
                                   step_and_eval_flops)
from lag_tf.lag.selector import SelectorRule, halving_stretches
from lag_tf.lag.stage import stage_text
from lag_tf.models import TransformerConfig, count_parameters
from lag_tf.models.flops import flops_per_token, forward_flops_per_token
from lag_tf.training.trainer import Trainer, make_optimizer, mask_probability_of
from lag_tf.training.trainer_arguments import check_trainer_arguments

ANY_PARAMETER = "*"
# The role scopes a run builds its Trainers in (gin/runs/common.gin); '' is a `train` run's.
ROLE_SCOPES = ("", "base", "probe", "scratch")
# What lag_tf.main calls before the experiment (a dry run skips some, e.g. for a TPU).
MAIN_CALLS = ("configure_devices", "make_strategy", "configure_determinism")


@dataclasses.dataclass(frozen=True)
class Phase:
  """One stretch of training: `count` models of `config`, each `steps` steps."""

  name: str
  # 'train', 'base', 'probe', 'continue', 'scratch' (the run is a scratch baseline), 'baseline'
  # (a scratch baseline after the run) or 'grow' (no training).
  role: str
  config: TransformerConfig
  steps: int
  tokens_per_step: int
  mask_probability: Optional[float]  # The data's (models/flops.flops_per_token).
  count: int = 1
  forward_only: bool = False  # Evaluations: a forward pass, a third of a training step.
  # The setting the experiment passes as this phase's Trainer.train_steps ('' for the gin
  # binding itself): the unused-binding report names these for a Trainer.train_steps binding.
  steps_set_by: str = ""

  @property
  def params(self) -> int:
    return count_parameters(self.config)

  @property
  def tokens(self) -> int:
    return self.count * self.steps * self.tokens_per_step

  @property
  def flops(self) -> float:
    per_token = forward_flops_per_token if self.forward_only else flops_per_token
    return self.tokens * per_token(self.config, self.mask_probability)


@dataclasses.dataclass
class Plan:
  kind: str
  phases: List[Phase]
  trainer: Dict[str, object]
  # (configurable, parameter) -> what sets it instead, for parameters the experiment passes
  # in every call; "no effect: why" for bindings the run ignores (ANY_PARAMETER: all of them).
  overrides: Dict[Tuple[str, str], str] = dataclasses.field(default_factory=dict)
  # Configurables the run calls that building the plan does not.
  calls: Tuple[str, ...] = ()

  @property
  def total_flops(self) -> float:
    """Everything the run computes and charges: training and the evaluations decisions read."""
    return sum(p.flops for p in self.phases)

  @property
  def training_flops(self) -> float:
    """Training alone (what the run's progress counts; evaluations are in its rate)."""
    return sum(p.flops for p in self.phases if not p.forward_only)

  @property
  def probe_flops(self) -> float:
    """Deciding: every probe's training and the evaluations the decisions read."""
    return sum(p.flops for p in self.phases if p.role in ("probe", "decision evals"))

  @property
  def probe_share(self) -> float:
    """Probing's share of the run's training, a scratch baseline trained beside it apart."""
    run = sum(p.flops for p in self.phases if p.role != "baseline")
    return self.probe_flops / run if run else 0.0


def arguments(fn, skip=("strategy", "model_dir", "model_config", "data",
                          "run_progress")) -> Dict[str, object]:
  """What gin passes to `fn` when the caller passes nothing: its defaults, then the bindings
  (references evaluated, so their configurables check their values as in a run)."""
  values = {name: p.default for name, p in inspect.signature(fn).parameters.items()
            if name not in skip and name != "self" and p.kind not in (p.VAR_POSITIONAL,
                                                                      p.VAR_KEYWORD)}
  values.update(gin.get_bindings(fn))
  name = getattr(fn, "__name__", str(fn))
  for parameter, value in values.items():
    if value is gin.REQUIRED:
      raise ValueError(f"{name}.{parameter} is required but not bound")
  return values


@dataclasses.dataclass(frozen=True)
class Role:
  """The Trainer settings of one role scope (gin/runs/common.gin: '' for a `train` run, 'base',
  'probe', 'scratch'), read in that scope as the run's Trainers are built in it."""

  settings: Dict[str, object]
  tokens: int          # Per training step.
  eval_tokens: int     # Per evaluation.


def _role(scope: str, replicas: Optional[int], config: TransformerConfig,
          data: LanguageModelingData) -> Role:
  with gin.config_scope(scope) if scope else contextlib.nullcontext():
    settings = arguments(Trainer)
  # The checks Trainer makes when it is built (the same function), on gin's settings.
  check_trainer_arguments(settings["global_batch_size"], settings["train_steps"],
                          settings["steps_per_loop"], settings["eval_every"],
                          settings["checkpoint_every"], replicas, data.vocab_size,
                          config.vocab_size)
  tokens = settings["global_batch_size"] * config.max_len
  return Role(settings, tokens, settings["eval_batches"] * tokens)


def _stage_phases(stage: GrowthStage, roles: Dict[str, Role],
                  mask: Optional[float]) -> List[Phase]:
  """A growth stage: the probes, the evaluations the decision reads and the winner's
  continuation, as probe_cost.stage_charge charges them (a race: its costliest end within its
  probe budget). The budget is the run's: from the growth point, the base role's batch; refuses
  a rule whose probes cannot fit SelectorRule.probe_budget_share."""
  base, probe = roles["base"], roles["probe"]
  prefix, targets, rule = stage_text(stage.index), stage.targets, stage.rule
  budget = probe_budget(rule, stage.probe, targets, stage.steps, base.tokens, base.eval_tokens,
                        mask, where=stage.where)
  charge = stage_charge(rule, stage.probe, len(targets), stage.steps,
                        *step_and_eval_flops(targets, base.tokens, base.eval_tokens, mask),
                        budget)
  winner = costliest(targets, mask)
  race = rule.rule == "race" and len(targets) > 1
  worst = f" (worst case within its budget, {flops_text(budget)})" if race and budget else (
      " (worst case: a race stops earlier)" if race else "")
  phases = _training_probe_phases(prefix, targets, rule, stage.probe.probe_steps, charge,
                                  probe.tokens, mask, worst, stage.steps_set_by)
  if charge.evals:
    phases.append(Phase(f"{prefix}decision evals{worst}", "decision evals", winner,
                        charge.evals, probe.eval_tokens, mask, forward_only=True))
  return phases + [Phase(f"{prefix}continue the winner", "continue", winner,
                         charge.continue_steps, probe.tokens, mask,
                         steps_set_by=stage.steps_set_by)]


def _training_probe_phases(prefix: str, targets: Dict[str, TransformerConfig],
                           rule: SelectorRule, probe_steps: int, charge: StageCharge,
                           tokens: int, mask: Optional[float], worst: str,
                           steps_set_by: str) -> List[Phase]:
  names, largest = list(targets), costliest(targets, mask)
  if rule.rule == "successive_halving":
    stretches = halving_stretches(rule, probe_steps, len(names))
    return [Phase(f"{prefix}probe rung {index} of {len(stretches)}: {alive} of {len(names)} "
                  f"to step {end}", "probe", largest, end - start, tokens, mask, alive,
                  steps_set_by=steps_set_by)
            for index, (start, end, alive) in enumerate(stretches, 1)]
  if charge.candidate_steps != len(names) * charge.stop_step:  # A race's budget binds.
    return [Phase(f"{prefix}race probes to step {charge.stop_step}, {len(names)} candidates"
                  f"{worst}", "probe", largest, charge.candidate_steps,
                  tokens, mask, steps_set_by=steps_set_by)]
  return [Phase(f"{prefix}probe {n} ({i} of {len(names)}){worst}", "probe", targets[n],
                charge.stop_step, tokens, mask, steps_set_by=steps_set_by)
          for i, n in enumerate(names, 1)]


def schedule_phases(schedule: RunSchedule, roles: Dict[str, Role],
                    mask: Optional[float]) -> List[Phase]:
  """The phases of a RunSchedule, as the executor runs it: the base, every growth stage, and
  the scratch baseline sized as the run sizes it (the run's FLOPs at the winner's batch)."""
  base, role = schedule.base, roles[schedule.base.scope]
  steps = role.settings["train_steps"] if base.steps is None else base.steps  # None: gin's.
  # Trained alone (a `train` run, a gradual run's scratch mode), its role is its name.
  phases = [Phase(base.phase, "base" if schedule.stages else base.phase, base.config, steps,
                  role.tokens, mask, steps_set_by=base.steps_set_by)]
  for stage in schedule.stages:
    phases += _stage_phases(stage, roles, mask)
  if schedule.scratch_baseline:
    winner, tokens = costliest(schedule.stages[-1].targets, mask), roles["probe"].tokens
    scratch = scratch_stage(winner, baseline_steps(sum(p.flops for p in phases), winner,
                                                   tokens, mask))
    phases.append(Phase(scratch.phase, "baseline", winner, scratch.steps,
                        roles[scratch.scope].tokens, mask, steps_set_by=scratch.steps_set_by))
  return phases


def _plan_schedule(kind: str, roles, mask, base):
  """train, lag, gradual: the experiment's own schedule, built from its gin arguments."""
  args = arguments(registry.EXPERIMENTS[kind])
  schedule = registry.SCHEDULES[kind](base, mask, **args)
  overrides = {}
  for parameter in MODE_TEMPLATES.get(schedule.mode, {}):
    overrides[("StagePoolTemplate", parameter)] = f"gradual_experiment.mode={schedule.mode!r}"
  if schedule.mode == "scratch":
    reason = "no effect: gradual_experiment.mode='scratch' trains one model without growing"
    overrides.update({(name, ANY_PARAMETER): reason for name in
                      ("ProbeSchedule", "SelectorRule", "StagePoolTemplate")})
  return schedule_phases(schedule, roles, mask), overrides


def _plan_grow(roles, mask, base):
  args = arguments(registry.EXPERIMENTS["grow"])
  candidate = args["candidate"]
  targets = grow_lib.grown_targets(args["pool"], candidate, base)
  set_by = "grow_experiment.base_steps"
  return ([Phase("base", "base", base, args["base_steps"], roles["base"].tokens, mask,
                 steps_set_by=set_by),
           Phase(f"grow {candidate} (evaluated, not trained)", "grow", targets[candidate], 0,
                 roles["probe"].tokens, mask, steps_set_by=set_by)], {})


def _plan_study(roles, mask, base):
  args = arguments(registry.EXPERIMENTS["study"])
  pool = args["pool"]
  targets = pool_targets(pool, base)
  mine = study_lib.worker_candidates(pool.names, args["worker_index"], args["worker_count"])
  eval_steps = study_lib.study_eval_steps(args["total_steps"], args["dense_every"],
                                          args["dense_until"], args["log_points"])
  phases = [Phase("base" if args["worker_index"] == 0 else "base (trained by worker 0)", "base",
                  base, args["base_steps"] if args["worker_index"] == 0 else 0,
                  roles["base"].tokens, mask, steps_set_by="study_experiment.base_steps (base)")]
  for seed in args["seeds"]:  # Each seed's schedule, checked as in a run, then its candidates.
    study_lib.seed_schedule(args["schedule"] or ProbeSchedule(), args["total_steps"],
                            eval_steps, seed)
    phases += [Phase(f"seed {seed}: {n}", "probe", targets[n], args["total_steps"],
                     roles["probe"].tokens, mask, steps_set_by="study_experiment.total_steps")
               for n in mine]
  return phases, {("ProbeSchedule", field): set_by
                  for field, set_by in study_lib.SCHEDULE_FIELDS_SET_BY.items()}


PLANNERS = {"grow": _plan_grow, "study": _plan_study}


def build_plan(replicas: Optional[int], data: Optional[LanguageModelingData] = None) -> Plan:
  """The plan of the run the parsed gin config declares (ValueError: what a run would refuse).

  replicas: the strategy's replicas (None when unknown without the hardware, e.g. a TPU).
  """
  kind = arguments(registry.run_experiment)["kind"]
  if kind not in registry.EXPERIMENTS:
    raise ValueError(f"run_experiment.kind={kind!r}: expected one of {sorted(registry.EXPERIMENTS)}")
  base = TransformerConfig()
  data = data or LanguageModelingData()
  roles = {scope: _role(scope, replicas, base, data) for scope in ROLE_SCOPES}
  mask = mask_probability_of(base, data)
  phases, overrides = (PLANNERS[kind](roles, mask, base) if kind in PLANNERS
                       else _plan_schedule(kind, roles, mask, base))
  set_by = list(dict.fromkeys(p.steps_set_by for p in phases if p.steps_set_by))
  if set_by:  # The experiment builds its Trainers with their steps and names.
    overrides[("Trainer", "train_steps")] = " and ".join(set_by)
    overrides[("Trainer", "name")] = "the experiment (each phase's name)"
  for phase in phases:
    if phase.steps < 0:
      raise ValueError(f"{phase.name}: {phase.steps} steps; expected >= 0")
  make_optimizer()  # What every base Trainer calls (cheap: no variables); gin records it.
  experiment = registry.EXPERIMENTS[kind].__name__
  return Plan(kind=kind, phases=phases, trainer=roles[""].settings, overrides=overrides,
              calls=MAIN_CALLS + ("run_experiment", experiment, "Trainer")
              # Growth runs read base_model.source where the base is restored or trained.
              + (("base_model",) if kind != "train" else ()))


def flops_text(flops: float) -> str:
  """4 significant digits with an SI prefix: '2.499 TFLOPs', '951.0 GFLOPs'."""
  for factor, prefix in ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M")):
    if flops >= factor:
      return f"{flops / factor:#.4g} {prefix}FLOPs"
  return f"{flops:.0f} FLOPs"
