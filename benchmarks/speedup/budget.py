"""Equal-compute plans for the growth-vs-scratch comparison (`python -m benchmarks.speedup`).

Every method trains the same target model and spends the same training-FLOP budget: the budget
of training the target from scratch for `SpeedupSuite.budget_steps` steps. A growth method
spends part of it on smaller models; a LAG method also spends every *losing* candidate's probe
(the winner's probe is the start of its own continued run, so it is not overhead). The plans
below choose each method's step counts so that its total, probes included, equals the budget
(to within one step of the last model). Pure functions: no TF, no gin state besides the
`SpeedupSuite` configurable.

FLOPs per step follow the project's one convention (lag_tf.models.flops.flops_per_token, as
every run counts them): 6 x matmul parameters + attention, the LM head at the positions the loss
predicts (the mask probability's share for an encoder).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from lag_tf import gin_registry
from lag_tf.lag.gradual import StagePoolTemplate, stage_pool
from lag_tf.lag.probe_cost import probe_evals_bound
from lag_tf.lag.selector import SelectorRule
from lag_tf.models.config import TransformerConfig
from lag_tf.models.flops import flops_per_token, forward_share

# The methods, in report order. Gradual ones grow through `stage_layers`; one-shot ones grow
# once from `one_shot_base_layers` to the target.
METHODS = ("scratch", "gradual_stacking", "midas", "stack_once", "lag_gradual",
           "race_gradual", "init_loss_gradual", "lag_once")
GRADUAL_MODES = {"gradual_stacking": "gradual_stacking", "midas": "midas",
                 "lag_gradual": "adaptive", "race_gradual": "adaptive",
                 "init_loss_gradual": "adaptive"}
RULES = {"lag_gradual": "lag", "race_gradual": "race", "init_loss_gradual": "init_loss",
         "lag_once": "lag", "gradual_stacking": "lag", "midas": "lag", "stack_once": "lag"}
LAG_METHODS = ("lag_gradual", "race_gradual", "init_loss_gradual", "lag_once")


@gin_registry.configurable
@dataclasses.dataclass(frozen=True)
class SpeedupSuite:
  """One comparison suite (declared in gin/experiments/speedup_*.gin).

  budget_steps: steps of the target model from scratch; its FLOPs are every method's budget.
  stage_layers: depths of the gradual methods' stages; the last one is the target depth.
  one_shot_base_layers / one_shot_base_share: the one-shot methods' small model and the share
    of the budget it trains for before growing to the target.
  probe_steps: k for LAG's probes (and the fixed strategies' first post-growth steps).
  init_loss_probe_steps: probe length of the init_loss rule, which needs only the loss at step
    0; one step keeps its wasted probe compute minimal (the rule cannot use more).
  one_shot_pool_size: candidates in `lag_once`'s pool (declared in the suite's gin file).
  race_probe_share: `race_gradual`'s probe budget per stage (SelectorRule.probe_budget_share:
    probes and the evaluations they read, as a share of the stage's training FLOPs); the plan
    charges all of it, the run spends at most that (its curve shows what it spent).
  race_segment_steps / race_first_look: `race_gradual`'s segment and first look
    (SelectorRule.race_segment_steps, race_first_look; 0: the end of the rewarmup).
  seeds: one run of every method per seed (initialization, data order, growth noise).
  frontier: the scratch frontier, {depth: budget factors}: one fully annealed run per depth and
    factor (factor x the budget's FLOPs, steps rounded). The target depth's runs answer the
    fixed-size question, every depth's the any-size one (empty: no frontier).
  methods: which of METHODS to run.
  sustained_tflops: training throughput assumed for the suite's printed time estimate.
  peak_learning_rates: {model kind: peak learning rate} of the schedule family every method
    shares (base models, every post-growth stage and scratch), tuned once on scratch; a kind
    not listed keeps the gin file's WarmupDecaySchedule / ProbeSchedule values.
  scratch_schedules: {model kind: {schedule: budget factors}}: more target-depth scratch runs
    for the frontier, each under a named learning-rate schedule `<shape>_<peak>` (shapes:
    SCRATCH_SHAPES; e.g. `wsd_2e-3`), at these shares of the budget (1.0 included: the suite's
    own `scratch` keeps the shared schedule). The frontier is the envelope of every run.
  method_schedules: {model kind: {growth method: (schedule, ...)}}: the method again under each
    named schedule (`<method>_<schedule>`, e.g. `gradual_stacking_wsd_2e-3`), every stage's
    schedule of that shape and peak (the base's and each post-growth one), same budget: the
    growth methods' tuning, the same grid scratch is tuned on.
  """

  name: str = "small"
  budget_steps: int = 1200
  stage_layers: Tuple[int, ...] = (1, 2, 3, 4)
  one_shot_base_layers: int = 2
  one_shot_base_share: float = 0.25
  probe_steps: int = 25
  init_loss_probe_steps: int = 1
  one_shot_pool_size: int = 4
  race_probe_share: float = 0.25
  race_segment_steps: int = 5
  race_first_look: int = 5
  seeds: Tuple[int, ...] = (0, 1, 2)
  methods: Tuple[str, ...] = METHODS
  sustained_tflops: float = 0.15
  peak_learning_rates: Mapping[str, float] = dataclasses.field(default_factory=dict)
  frontier: Mapping[int, Tuple[float, ...]] = dataclasses.field(default_factory=dict)
  scratch_schedules: Mapping[str, Mapping[str, Tuple[float, ...]]] = dataclasses.field(
      default_factory=dict)
  method_schedules: Mapping[str, Mapping[str, Tuple[str, ...]]] = dataclasses.field(
      default_factory=dict)

  def __post_init__(self):
    unknown = [m for m in self.methods if m not in METHODS]
    if unknown:
      raise ValueError(f"SpeedupSuite.methods: unknown {unknown}; expected some of {METHODS}")
    layers = list(self.stage_layers)
    if len(layers) < 2 or any(b <= a for a, b in zip(layers, layers[1:])):
      raise ValueError(f"SpeedupSuite.stage_layers={self.stage_layers}: expected increasing "
                       "depths")
    if not 1 <= self.one_shot_base_layers < layers[-1]:
      raise ValueError(f"SpeedupSuite.one_shot_base_layers={self.one_shot_base_layers} must be "
                       f"in [1, {layers[-1]})")
    if not 0.0 < self.one_shot_base_share < 1.0:
      raise ValueError("SpeedupSuite.one_shot_base_share must be in (0, 1)")
    if any(int(n) < 1 or any(f <= 0 for f in factors)
           for n, factors in self.frontier.items()):
      raise ValueError(f"SpeedupSuite.frontier={dict(self.frontier)}: expected {{depth >= 1: "
                       "(budget factors > 0, ...)}")
    for schedules in self.scratch_schedules.values():
      for name, factors in schedules.items():
        scratch_schedule(name)  # ValueError for a name it cannot read.
        if any(f <= 0 for f in factors):
          raise ValueError(f"SpeedupSuite.scratch_schedules[{name!r}]: budget factors must be "
                           "> 0")
    for by_method in self.method_schedules.values():
      for method, names in by_method.items():
        if method not in METHODS or method == "scratch":
          raise ValueError(f"SpeedupSuite.method_schedules: {method!r} is not a growth method "
                           f"of {METHODS[1:]}")
        for name in names:
          scratch_schedule(name)
    if self.budget_steps < 1 or self.probe_steps < 1 or self.init_loss_probe_steps < 1:
      raise ValueError("SpeedupSuite: budget_steps, probe_steps and init_loss_probe_steps must "
                       "be >= 1")

  @property
  def target_layers(self) -> int:
    return self.stage_layers[-1]


@dataclasses.dataclass(frozen=True)
class StageBudget:
  """One model trained by a method: its depth, steps, FLOPs per step; `overhead_flops` are the
  losing candidates' probes spent when this stage's model was chosen. (A plan of the suite's
  budget, by depth alone; lag_tf.plan.Phase is a run's stretch of one config, from its gin.)"""

  layers: int
  steps: int
  flops_per_step: float
  overhead_flops: float = 0.0

  @property
  def flops(self) -> float:
    return self.steps * self.flops_per_step + self.overhead_flops


@dataclasses.dataclass(frozen=True)
class MethodPlan:
  method: str
  phases: List[StageBudget]
  probe_steps: int            # 0 for scratch.
  budget_flops: float

  @property
  def total_flops(self) -> float:
    return sum(p.flops for p in self.phases)

  @property
  def overhead_flops(self) -> float:
    return sum(p.overhead_flops for p in self.phases)

  @property
  def stage_steps(self) -> List[int]:
    return [p.steps for p in self.phases]

  def to_dict(self) -> dict:
    return {"method": self.method, "probe_steps": self.probe_steps,
            "budget_flops": self.budget_flops, "total_flops": self.total_flops,
            "overhead_flops": self.overhead_flops,
            "phases": [dataclasses.asdict(p) for p in self.phases]}


def flops_per_step(config: TransformerConfig, global_batch_size: int,
                   mask_probability: float) -> float:
  """Training FLOPs of one step of `config` (models/flops.flops_per_token)."""
  return global_batch_size * config.max_len * flops_per_token(config, mask_probability)


def eval_steps(probe_steps: int) -> Tuple[int, ...]:
  """Where the suite's probes evaluate (ProbeSchedule.eval_steps): 0, k/2 and k."""
  return tuple(sorted({0, probe_steps // 2, probe_steps}))


def rule_of(method: str, suite: SpeedupSuite) -> SelectorRule:
  """The selector rule a method's runs use (method_bindings binds the same values)."""
  rule = SelectorRule(rule=RULES[method])
  if method == "race_gradual":
    rule = dataclasses.replace(rule, race_segment_steps=suite.race_segment_steps,
                               race_first_look=suite.race_first_look,
                               probe_budget_share=suite.race_probe_share)
  return rule


def decision_overhead(method: str, suite: SpeedupSuite, pool_size: int, step_flops: float,
                      eval_batches: int) -> Tuple[float, float]:
  """What a growth decision adds to a method's budget, as (FLOPs, FLOPs per step of the
  stage): the losing candidates' probe steps and every evaluation the decision reads
  (eval_batches batches, a forward pass each: a third of a step's count). A race is charged its
  whole probe budget, a share of the stage's steps (it may spend less; charging the winner's
  own probe steps too is conservative by one probe)."""
  if pool_size <= 1:
    return 0.0, 0.0
  rule = rule_of(method, suite)
  if rule.rule == "race":
    return 0.0, rule.probe_budget_share * step_flops
  probe = suite.init_loss_probe_steps if method == "init_loss_gradual" else suite.probe_steps
  evals = probe_evals_bound(rule, probe, eval_steps(probe), pool_size)
  return ((pool_size - 1) * probe * step_flops
          + forward_share(evals * eval_batches * step_flops), 0.0)


def pool_sizes(stage_layers: Sequence[int], template: StagePoolTemplate) -> List[int]:
  """Candidates per growth stage of adaptive gradual stacking (stage 1 onwards)."""
  return [len(stage_pool(template, a, b, i + 1))
          for i, (a, b) in enumerate(zip(stage_layers, stage_layers[1:]))]


def plan_method(method: str, suite: SpeedupSuite, target: TransformerConfig,
                global_batch_size: int, mask_probability: float,
                template: StagePoolTemplate = StagePoolTemplate(),
                eval_batches: int = 8) -> MethodPlan:
  """Step counts of `method` under the suite's budget, every decision's cost included (the
  losers' probes and the evaluations read; `decision_overhead`); ValueError if it cannot fit."""
  def fps(layers: int) -> float:
    return flops_per_step(target.replace(num_layers=layers), global_batch_size,
                          mask_probability)

  budget = suite.budget_steps * fps(suite.target_layers)
  if method == "scratch":
    return MethodPlan(method, [StageBudget(suite.target_layers, suite.budget_steps,
                                     fps(suite.target_layers))], 0, budget)
  probe = suite.init_loss_probe_steps if method == "init_loss_gradual" else suite.probe_steps
  if method in GRADUAL_MODES:
    layers = list(suite.stage_layers)
    sizes = (pool_sizes(layers, template) if GRADUAL_MODES[method] == "adaptive"
             else [1] * (len(layers) - 1))
    costs = [(0.0, 0.0)] + [decision_overhead(method, suite, size, fps(n), eval_batches)
                            for size, n in zip(sizes, layers[1:])]
    # Equal steps per stage; the last stage takes what the budget has left.
    per_stage = int((budget - sum(c for c, _ in costs))
                    // sum(fps(n) + rate for n, (_, rate) in zip(layers, costs)))
    steps = [per_stage] * (len(layers) - 1)
    spent = sum(s * (fps(n) + rate) + c for s, n, (c, rate) in zip(steps, layers, costs))
    last, rate = costs[-1]
    steps.append(int(round((budget - spent - last) / (fps(layers[-1]) + rate))))
  else:  # stack_once, lag_once
    layers = [suite.one_shot_base_layers, suite.target_layers]
    size = suite.one_shot_pool_size if method == "lag_once" else 1
    costs = [(0.0, 0.0), decision_overhead(method, suite, size, fps(layers[1]), eval_batches)]
    base_steps = int(round(suite.one_shot_base_share * budget / fps(layers[0])))
    last, rate = costs[1]
    after = (budget - base_steps * fps(layers[0]) - last) / (fps(layers[1]) + rate)
    steps = [base_steps, int(round(after))]
  overheads = [c + rate * s for s, (c, rate) in zip(steps, costs)]
  if RULES.get(method) == "race":
    sizes = sizes if method in GRADUAL_MODES else [size]
    for n, s, o, pool in zip(layers[1:], steps[1:], overheads[1:], sizes):
      # 0 looks first at the end of the rewarmup, at most k.
      look = suite.race_first_look or suite.probe_steps
      first_look = pool * (look + forward_share(2 * eval_batches)) * fps(n)
      if pool > 1 and first_look > o:
        raise ValueError(
            f"method {method}: one race look of {pool} candidates ({look} "
            f"steps and 2 evaluations of {eval_batches} batches each) costs "
            f"{first_look / (s * fps(n)):.1%} of a {s}-step stage, more than "
            f"SpeedupSuite.race_probe_share={suite.race_probe_share:g}; raise the share, "
            "shorten race_segment_steps or use fewer Trainer.eval_batches")
  phases = [StageBudget(n, s, fps(n), o) for n, s, o in zip(layers, steps, overheads)]
  if min(steps[1:]) < probe or steps[0] < 1:
    raise ValueError(f"method {method}: the budget of {suite.budget_steps} target steps leaves "
                     f"stages of {steps} steps, shorter than the probe ({probe}); raise "
                     "SpeedupSuite.budget_steps or lower probe_steps")
  return MethodPlan(method, phases, probe, budget)


def frontier_plans(suite: SpeedupSuite, target: TransformerConfig, global_batch_size: int,
                   mask_probability: float) -> List[MethodPlan]:
  """One scratch run per (depth, budget factor) of the suite's frontier, fully annealed (its
  schedule decays over exactly its own steps). Named by depth and steps (`frontier_L2_s1150`),
  so two suites whose grids meet share a run. The target depth at factor 1 is the `scratch`
  method itself and is left out."""
  budget = suite.budget_steps * flops_per_step(target.replace(num_layers=suite.target_layers),
                                               global_batch_size, mask_probability)
  found = {}
  for layers, factors in sorted(suite.frontier.items()):
    layers = int(layers)
    fps = flops_per_step(target.replace(num_layers=layers), global_batch_size, mask_probability)
    for factor in factors:
      steps = max(1, int(round(factor * budget / fps)))
      if (layers, steps) == (suite.target_layers, suite.budget_steps):
        continue
      found.update(_scratch_plan(layers, steps, fps))
  fps = flops_per_step(target.replace(num_layers=suite.target_layers), global_batch_size,
                       mask_probability)
  for schedule, factors in sorted(suite.scratch_schedules.get(target.kind, {}).items()):
    for factor in factors:
      steps = max(1, int(round(factor * budget / fps)))
      found.update(_scratch_plan(suite.target_layers, steps, fps, schedule))
  return list(found.values())


def _scratch_plan(layers: int, steps: int, fps: float, schedule: str = "") -> dict:
  name = frontier_name(layers, steps, schedule)
  return {name: MethodPlan(name, [StageBudget(layers, steps, fps)], 0, steps * fps)}


def frontier_name(layers: int, steps: int, schedule: str = "") -> str:
  return f"frontier_L{layers}_s{steps}" + (f"_{schedule}" if schedule else "")


# Schedule shapes of the scratch runs a suite tunes: WarmupDecaySchedule's decay and
# end_fraction (wsd: WarmupDecaySchedule.cooldown_fraction's default, the last 20%).
SCRATCH_SHAPES = {"lin0": ("linear", 0.0), "lin10": ("linear", 0.1), "wsd": ("wsd", 0.0)}
# A run under a named schedule: a frontier run (`frontier_L4_s600_wsd_2e-3`) or a growth
# method's (`gradual_stacking_wsd_2e-3`).
_SCHEDULED_NAME = re.compile(r"^(?P<method>.+?)_(?P<schedule>(?:%s)_[0-9.]+(?:e-?\d+)?)$"
                             % "|".join(SCRATCH_SHAPES))


def scratch_schedule(name: str) -> Tuple[str, float, float]:
  """(decay, end_fraction, peak learning rate) of a scratch schedule name `<shape>_<peak>`."""
  shape, _, peak = name.partition("_")
  try:
    value = float(peak)
  except ValueError:
    value = -1.0
  if shape not in SCRATCH_SHAPES or value <= 0:
    raise ValueError(f"scratch schedule {name!r}: expected <shape>_<peak learning rate> with a "
                     f"shape of {sorted(SCRATCH_SHAPES)}, e.g. 'wsd_2e-3'")
  return SCRATCH_SHAPES[shape] + (value,)


def schedule_of(method: str) -> Optional[str]:
  """The named schedule of a frontier run (`frontier_L4_s600_wsd_2e-3`) or of a growth method's
  tuned run (`gradual_stacking_wsd_2e-3`), or None."""
  match = _SCHEDULED_NAME.match(method)
  return match.group("schedule") if match else None


def base_method(method: str) -> str:
  """The suite method a run is of: `gradual_stacking` for `gradual_stacking_wsd_2e-3`."""
  match = _SCHEDULED_NAME.match(method)
  return match.group("method") if match and match.group("method") in METHODS else method


def is_scratch(method: str) -> bool:
  """A method that trains one model from scratch (the baseline and every frontier run)."""
  return method == "scratch" or method.startswith("frontier_")


def experiment_of(method: str) -> str:
  """The lag_tf experiment kind a method's run is (`run_experiment.kind`, as method_bindings
  binds it): what a reader of its model dir looks for."""
  if is_scratch(method):
    return "train"
  return "gradual" if base_method(method) in GRADUAL_MODES else "lag"


def method_bindings(plan: MethodPlan, seed: int, peak_learning_rate: Optional[float] = None,
                    suite: Optional[SpeedupSuite] = None) -> List[str]:
  """The gin bindings that make the suite's gin file run `plan` for `seed`."""
  phases, schedule = plan.phases, schedule_of(plan.method)
  method = base_method(plan.method)
  if schedule:  # A tuned run: its own shape and peak.
    decay, end_fraction, peak_learning_rate = scratch_schedule(schedule)
  bindings = [f"Trainer.seed = {seed}", f"LanguageModelingData.seed = {seed}",
              f"ProbeSchedule.growth_seed = {seed}",
              f"WarmupDecaySchedule.total_steps = {phases[0].steps}"]
  if peak_learning_rate is not None:
    bindings += [f"WarmupDecaySchedule.peak_learning_rate = {peak_learning_rate!r}",
                 f"ProbeSchedule.peak_learning_rate = {peak_learning_rate!r}"]
  if schedule:
    bindings += [f"WarmupDecaySchedule.decay = {decay!r}",
                 f"WarmupDecaySchedule.end_fraction = {end_fraction!r}"]
  if is_scratch(method):
    return bindings + ["run_experiment.kind = 'train'", f"NUM_LAYERS = {phases[0].layers}",
                       f"Trainer.train_steps = {phases[0].steps}"]
  if schedule:  # Every post-growth stage under the same shape.
    bindings += [f"ProbeSchedule.decay = {decay!r}",
                 f"ProbeSchedule.end_fraction = {end_fraction!r}"]
  bindings.append(f"ProbeSchedule.probe_steps = {plan.probe_steps}")
  bindings.append("ProbeSchedule.eval_steps = " + _tuple(eval_steps(plan.probe_steps)))
  bindings.append(f"SelectorRule.rule = '{RULES[method]}'")
  if RULES[method] == "race":
    rule = rule_of(method, suite or SpeedupSuite())
    bindings += [f"SelectorRule.race_segment_steps = {rule.race_segment_steps}",
                 f"SelectorRule.race_first_look = {rule.race_first_look}",
                 f"SelectorRule.probe_budget_share = {rule.probe_budget_share!r}"]
  if method in GRADUAL_MODES:
    return bindings + ["run_experiment.kind = 'gradual'", f"NUM_LAYERS = {phases[0].layers}",
                       f"gradual_experiment.mode = '{GRADUAL_MODES[method]}'",
                       f"StageSchedule.stage_layers = {_tuple(p.layers for p in phases)}",
                       f"StageSchedule.stage_steps = {_tuple(p.steps for p in phases)}"]
  pool = "LAG_ONCE_POOL" if method == "lag_once" else "STACK_ONCE_POOL"
  return bindings + ["run_experiment.kind = 'lag'", f"NUM_LAYERS = {phases[0].layers}",
                     f"TARGET_LAYERS = {phases[1].layers}", f"lag_experiment.pool = %{pool}",
                     f"lag_experiment.base_steps = {phases[0].steps}",
                     f"lag_experiment.continue_steps = {phases[1].steps - plan.probe_steps}"]


def _tuple(values) -> str:
  values = list(values)
  return "(" + ", ".join(str(v) for v in values) + ("," if len(values) == 1 else "") + ")"


def plans(suite: SpeedupSuite, target: TransformerConfig, global_batch_size: int,
          mask_probability: float, template: StagePoolTemplate = StagePoolTemplate(),
          eval_batches: int = 8) -> Dict[str, MethodPlan]:
  """Every method's plan, and each tuned run's (SpeedupSuite.method_schedules: its method's
  plan, under its own name)."""
  found = {m: plan_method(m, suite, target, global_batch_size, mask_probability, template,
                          eval_batches)
           for m in suite.methods}
  for method, schedules in suite.method_schedules.get(target.kind, {}).items():
    for schedule in schedules:
      if method in found:
        found[f"{method}_{schedule}"] = dataclasses.replace(found[method],
                                                            method=f"{method}_{schedule}")
  return found
