"""What probing costs: the most a rule's probes can spend, the probe budget a rule must fit, and
what a plan charges one growth stage (its probes, the evaluations the decision reads and the
winner's continuation). Pure functions; lag_tf.plan prices a run with them and the stage's
progress forgoes what the plan charged beyond what the stage spent (docs/design.md).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Sequence

from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import SelectorRule, halving_stretches, race_segments
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import flops_per_token, forward_flops_per_token


def probe_evals_bound(rule: SelectorRule, probe_steps: int, eval_steps: Sequence[int],
                      num_candidates: int, rewarmup_steps: int = 0) -> int:
  """The most evaluations a decision can read, summed over candidates: each candidate is
  evaluated at 0, at `eval_steps` and at the end of every stretch it trains (k; each rung of
  successive halving; each look of a race). A pool of one decides nothing (0)."""
  if num_candidates <= 1:
    return 0
  evals = set(eval_steps) | {0, probe_steps}
  if rule.rule == "successive_halving":
    return sum(alive * (len({s for s in evals if start < s <= end} | {end}) + (start == 0))
               for start, end, alive in halving_stretches(rule, probe_steps, num_candidates))
  if rule.rule == "race":
    evals |= set(race_segments(rule, probe_steps, rewarmup_steps))
  return num_candidates * len(evals)


def _candidate_steps(rule: SelectorRule, probe_steps: int, num_candidates: int) -> int:
  """Probe training steps of every candidate together when nobody stops early."""
  if rule.rule == "successive_halving":
    return sum(alive * (end - start)
               for start, end, alive in halving_stretches(rule, probe_steps, num_candidates))
  return num_candidates * probe_steps


def check_probe_budget(rule: SelectorRule, worst_case_flops: float, stage_flops: float,
                       first_look_flops: float, where: str) -> None:
  """Raises ValueError when a rule's probes cannot fit SelectorRule.probe_budget_share of the
  stage's training FLOPs: its worst case for init_loss, lag and halving; its first look (every
  candidate to the first segment) for a race, which stops when the next look would not fit."""
  if rule.probe_budget_share <= 0:
    return
  allowed = rule.probe_budget_share * stage_flops
  needed = first_look_flops if rule.rule == "race" else worst_case_flops
  if needed > allowed:
    raise ValueError(
        f"{where}: the probes need up to {needed / 1e12:.3g} TFLOPs "
        f"({needed / stage_flops:.1%} of the stage's {stage_flops / 1e12:.3g} training TFLOPs) "
        f"but SelectorRule.probe_budget_share={rule.probe_budget_share:g} allows "
        f"{allowed / 1e12:.3g}; shorten ProbeSchedule.probe_steps, shrink the pool, or raise "
        "the share")


def probe_budget(rule: SelectorRule, schedule: ProbeSchedule,
                 targets: Dict[str, TransformerConfig], steps_after_growth: int,
                 tokens_per_step: int, eval_tokens: int, mask_probability: Optional[float],
                 where: str) -> Optional[float]:
  """SelectorRule.probe_budget_share of the stage's training FLOPs after growth (None: no
  budget); ValueError when the rule's probes cannot fit it (selector.check_probe_budget).
  mask_probability: the run's (models/flops.flops_per_token)."""
  if rule.probe_budget_share <= 0:
    return None
  if tokens_per_step <= 0 or eval_tokens <= 0:
    raise ValueError(f"{where}: SelectorRule.probe_budget_share needs the growth point's "
                     "tokens per step and per evaluation (GrowthPoint.from_trainer records them)")
  per_step, per_eval = step_and_eval_flops(targets, tokens_per_step, eval_tokens,
                                           mask_probability)
  stage_flops = steps_after_growth * per_step
  # Its worst case: the charge of a stage that no budget stops.
  full = stage_charge(rule, schedule, len(targets), steps_after_growth, per_step, per_eval, None)
  worst = full.candidate_steps * per_step + full.evals * per_eval
  first_look = race_segments(rule, schedule.probe_steps, schedule.rewarmup_steps)[0]
  first = (first_look * per_step + 2 * per_eval) * len(targets)
  check_probe_budget(rule, worst, stage_flops, first, where)
  return rule.probe_budget_share * stage_flops


def costliest(targets: Dict[str, TransformerConfig],
              mask_probability: Optional[float]) -> TransformerConfig:
  """The target with the most FLOPs per token: the one a stage's budget and charge count per
  candidate and a plan's winner (exact when all candidates share a target, as LAG pools do)."""
  return max(targets.values(), key=lambda c: flops_per_token(c, mask_probability))


def step_and_eval_flops(targets: Dict[str, TransformerConfig], tokens_per_step: int,
                        eval_tokens: int, mask_probability: Optional[float]):
  """(FLOPs of one training step, of one evaluation) of the costliest target."""
  largest = costliest(targets, mask_probability)
  return (tokens_per_step * flops_per_token(largest, mask_probability),
          eval_tokens * forward_flops_per_token(largest, mask_probability))


@dataclasses.dataclass(frozen=True)
class StageCharge:
  """What a plan charges one growth stage: `candidate_steps` of probe training (all candidates
  together, at the costliest target's FLOPs), `evals` evaluations the decision reads, and the
  winner's `continue_steps` after its probe, which ends at `stop_step`."""

  stop_step: int
  candidate_steps: int
  evals: int
  continue_steps: int

  def training_flops(self, flops_per_step: float) -> float:
    return (self.candidate_steps + self.continue_steps) * flops_per_step


def stage_charge(rule: SelectorRule, schedule: ProbeSchedule, num_candidates: int,
                 steps_after_growth: int, flops_per_step: float, flops_per_eval: float,
                 budget: Optional[float]) -> StageCharge:
  """The costliest way the stage can run. Every candidate to k, except a race with a probe
  budget: after any look but its first it has spent at most the budget (lag_tf.lag.stage stops
  it when the next look, at two evaluations per survivor, would not fit), and its winner
  continues from the look it stopped at. A race stopped at look s therefore costs at most
  min(every candidate to s, budget) plus the winner's steps_after_growth - s; the charge is the
  costliest s (a plan = the run when nobody leaves and no budget binds)."""
  k = schedule.probe_steps
  steps = _candidate_steps(rule, k, num_candidates)
  evals = probe_evals_bound(rule, k, schedule.probe_eval_steps(), num_candidates,
                            schedule.rewarmup_steps)
  full = StageCharge(k, steps, evals, steps_after_growth - k)
  if rule.rule != "race" or budget is None or num_candidates <= 1:
    return full
  looks = race_segments(rule, k, schedule.rewarmup_steps)
  points = set(schedule.probe_eval_steps()) | {0} | set(looks)
  best, best_flops, previous = None, -1.0, 0
  for index, step in enumerate(looks):
    evals = num_candidates * len([p for p in points if p <= step])
    steps = num_candidates * step
    if index:
      # The run's check counts two evaluations per survivor for the next look; more
      # evaluation points inside the segment can overshoot the budget by their cost.
      new_points = len([p for p in points if previous < p <= step])
      cap = budget + num_candidates * max(new_points - 2, 0) * flops_per_eval
      if steps * flops_per_step + evals * flops_per_eval > cap:
        steps = int((cap - evals * flops_per_eval) // flops_per_step)
        # The fewest candidate-steps that reach this look: everyone to the first look, then
        # the winner alone.
        if steps < num_candidates * looks[0] + step - looks[0]:
          break
    charge = StageCharge(step, steps, evals, steps_after_growth - step)
    flops = charge.training_flops(flops_per_step) + evals * flops_per_eval
    if flops > best_flops:
      best, best_flops = charge, flops
    previous = step
  return best
