"""Selector rules: which probed candidate to commit. Pure functions on probe results.

Rules (docs/design.md, "What a run does"):
  init_loss           rank by eval loss at probe step 0 (the grown model at initialization); the
                      baseline the LAG paper argues against.
  lag                 rank by eval loss after k probe steps, optionally averaged over the last m
                      evals.
  successive_halving  the same score, but the probe itself is staged: all candidates for k0
                      steps, keep the best 1/eta, extend the survivors, ... (see
                      `halving_rungs` / `halving_survivors`; the probe loop drives it).
  race                a sequential race (racing / ranking-and-selection with an indifference
                      zone): the candidates advance in lockstep segments on identical data;
                      after each segment a candidate whose loss is worse than the leader's by
                      more than `race_z` paired standard errors leaves the race; the race stops
                      when one candidate is left, when no survivor can be better than the leader
                      by more than `race_delta` nats (the choice no longer matters), at k, or
                      when the probe budget is spent (`race_round`; the probe loop drives it).

Noise-aware ties: all candidates are evaluated on the same held-out batches, so the noise in a
*difference* of scores is the standard error of the per-batch paired differences. A candidate
whose score is within `tie_z` such standard errors of the best one ties with it; ties are broken
by lower cost (parameters, then FLOPs per token), and the decision says so. A candidate whose
loss is NaN or Inf has failed and never wins.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lag_tf import gin_registry

RULES = ("init_loss", "lag", "successive_halving", "race")
# Why a race stopped (DecisionRecord.race["stopped"]).
RACE_STOPS = ("one_left", "indifferent", "probe_steps", "budget")


@dataclasses.dataclass
class ProbeResult:
  """What one candidate's probe produced.

  eval_losses: probe step -> eval loss on the shared held-out batches.
  eval_batch_losses: probe step -> per-batch eval losses (same batches for every candidate).
  failed: why the candidate failed (e.g. 'loss is nan at probe step 7'), or None.
  steps_trained: probe steps actually trained (for cost accounting).
  """

  name: str
  params: int
  flops_per_token: float
  eval_losses: Dict[int, float] = dataclasses.field(default_factory=dict)
  eval_batch_losses: Dict[int, List[float]] = dataclasses.field(default_factory=dict)
  failed: Optional[str] = None
  steps_trained: int = 0  # Probe steps actually trained (a failed candidate stops early).
  evals: int = 0          # Evaluations the probe ran (its decision reads them: charged).
  eval_tokens: int = 0    # Tokens of one evaluation (every held-out batch).


@dataclasses.dataclass
class Decision:
  rule: str
  winner: str
  scores: Dict[str, Optional[float]]  # None for failed candidates.
  score_steps: List[int]
  ranking: List[str]                   # Best first; failed candidates last.
  tied_with: List[str]                 # Candidates statistically tied with the best score.
  tie_broken_by_cost: bool
  failed: Dict[str, str]
  eliminated: List[str] = dataclasses.field(default_factory=list)  # By halving or a race.


@gin_registry.configurable
@dataclasses.dataclass(frozen=True)
class SelectorRule:
  """rule: one of RULES. average_last: m, the number of last evals averaged by 'lag'.
  tie_z: ties within this many standard errors of the paired difference (0 disables ties).
  halving_eta, halving_min_steps: successive halving's keep fraction 1/eta and first rung k0.
  race_segment_steps: the race's segment: candidates advance this many steps between looks.
  race_z: a candidate leaves the race once its loss is worse than the leader's by more than
    race_z paired standard errors (the same held-out batches for all).
  race_delta: the indifference zone (nats): the race stops once, for every survivor, the
    leader's loss is at most race_delta above the survivor's at race_z standard errors.
  race_first_look: the probe step of the race's first look; 0 (default): the end of the
    post-growth rewarmup (ProbeSchedule.rewarmup_steps), or one segment without one. Looks
    inside the rewarmup rank how candidates absorb the learning-rate shock: in
    lag_quickstart.gin a candidate 2.5 standard errors behind at probe step 5 led at step 10.
  probe_budget_share: the most a stage may spend on probing (every candidate's probe steps
    and the evaluations its decision reads), as a share of the stage's training FLOPs after
    growth (its steps after growth at the largest candidate's size); 0: no budget. A rule
    whose worst case cannot fit is refused before anything trains; a race stops when the
    next segment would not fit.
  """

  rule: str = "race"
  average_last: int = 1
  tie_z: float = 1.0
  halving_eta: int = 2
  halving_min_steps: int = 0
  race_segment_steps: int = 5
  race_z: float = 2.5
  race_delta: float = 0.02
  race_first_look: int = 0
  probe_budget_share: float = 0.0

  def __post_init__(self):
    if self.rule not in RULES:
      raise ValueError(f"SelectorRule.rule={self.rule!r}: expected one of {RULES}")
    if self.average_last < 1:
      raise ValueError(f"SelectorRule.average_last={self.average_last}: expected >= 1")
    if self.rule == "successive_halving" and self.halving_eta < 2:
      raise ValueError(f"SelectorRule.halving_eta={self.halving_eta}: expected >= 2")
    if (self.race_segment_steps < 1 or self.race_z <= 0 or self.race_delta < 0
        or self.race_first_look < 0):
      raise ValueError("SelectorRule: race_segment_steps must be >= 1, race_z > 0, "
                       "race_delta >= 0 and race_first_look >= 0")
    if not 0.0 <= self.probe_budget_share:
      raise ValueError(f"SelectorRule.probe_budget_share={self.probe_budget_share}: expected "
                       ">= 0 (0: no budget)")


def is_finite(value: Optional[float]) -> bool:
  return value is not None and math.isfinite(value)


def score_steps(rule: SelectorRule, result: ProbeResult, up_to: Optional[int] = None) -> List[int]:
  """The eval steps a candidate's score averages."""
  steps = sorted(s for s in result.eval_losses if up_to is None or s <= up_to)
  if not steps:
    return []
  if rule.rule == "init_loss":
    return [steps[0]] if steps[0] == 0 else []
  return steps[-rule.average_last:]


def score(rule: SelectorRule, result: ProbeResult, up_to: Optional[int] = None):
  """(score, steps used) for one candidate; score is None if it failed or has no evals."""
  if result.failed:
    return None, []
  steps = score_steps(rule, result, up_to)
  values = [result.eval_losses[s] for s in steps]
  if not values or not all(is_finite(v) for v in values):
    return None, steps
  return float(np.mean(values)), steps


def _paired_batches(result: ProbeResult, steps: Sequence[int]) -> Optional[np.ndarray]:
  """Per-batch losses averaged over `steps` (None if any step lacks per-batch losses)."""
  rows = [result.eval_batch_losses.get(s) for s in steps]
  if not rows or any(row is None for row in rows):
    return None
  return np.mean(np.asarray(rows, dtype=np.float64), axis=0)


def paired_standard_error(a: np.ndarray, b: np.ndarray) -> float:
  """Standard error of mean(a - b) over batches (0 when there is one batch)."""
  differences = np.asarray(a, np.float64) - np.asarray(b, np.float64)
  if differences.size < 2:
    return 0.0
  return float(np.std(differences, ddof=1) / math.sqrt(differences.size))


def select(rule: SelectorRule, results: Mapping[str, ProbeResult],
           up_to: Optional[int] = None) -> Decision:
  """Ranks the candidates and picks the winner (see the module docstring)."""
  scores, steps_used, failed = {}, {}, {}
  for name, result in results.items():
    value, steps = score(rule, result, up_to)
    scores[name], steps_used[name] = value, steps
    if value is None:
      failed[name] = result.failed or "no finite eval loss at the scored steps"
  alive = sorted((n for n in results if scores[n] is not None), key=lambda n: (scores[n], n))
  if not alive:
    raise RuntimeError("every candidate failed: " + "; ".join(f"{n}: {w}" for n, w in
                                                              sorted(failed.items())))
  eliminated = []
  if rule.rule in ("successive_halving", "race"):
    # Only the candidates probed to the last rung compete; the others were eliminated earlier.
    last = max(max(results[n].eval_losses) for n in alive)
    eliminated = [n for n in alive if max(results[n].eval_losses) < last]
    alive = [n for n in alive if n not in eliminated]
  best = alive[0]
  tied = [best]
  best_batches = _paired_batches(results[best], steps_used[best])
  if rule.tie_z > 0 and best_batches is not None:
    for name in alive[1:]:
      batches = _paired_batches(results[name], steps_used[name])
      if batches is None or batches.shape != best_batches.shape:
        continue
      margin = rule.tie_z * paired_standard_error(batches, best_batches)
      if scores[name] - scores[best] <= margin:
        tied.append(name)
  cost = lambda n: (results[n].params, results[n].flops_per_token, scores[n], n)  # noqa: E731
  winner = min(tied, key=cost)
  ranking = alive + eliminated + sorted(failed)
  return Decision(rule=rule.rule, winner=winner, scores=scores,
                  score_steps=steps_used[winner], ranking=ranking,
                  tied_with=sorted(tied) if len(tied) > 1 else [],
                  tie_broken_by_cost=winner != best, failed=failed, eliminated=eliminated)


def halving_rungs(rule: SelectorRule, probe_steps: int, num_candidates: int) -> List[int]:
  """Probe lengths of successive halving's rungs, ending at probe_steps.

  With n candidates and keep fraction 1/eta there are ceil(log_eta(n)) rungs; the first is
  halving_min_steps (default: probe_steps / eta^(rungs-1)), each next one eta times longer.
  """
  if num_candidates <= 1:
    return [probe_steps]
  rungs = max(1, math.ceil(math.log(num_candidates) / math.log(rule.halving_eta)))
  first = rule.halving_min_steps or max(1, probe_steps // rule.halving_eta ** (rungs - 1))
  lengths = [min(probe_steps, first * rule.halving_eta ** i) for i in range(rungs)]
  lengths[-1] = probe_steps
  return sorted(set(lengths))


def halving_stretches(rule: SelectorRule, probe_steps: int,
                      num_candidates: int) -> List[Tuple[int, int, int]]:
  """Successive halving's rungs as (from probe step, to probe step, candidates trained): the
  best ceil(n / eta) of each rung go on to the next (`halving_survivors`); the count is exact,
  whichever candidates they are."""
  stretches, alive, previous = [], num_candidates, 0
  for rung in halving_rungs(rule, probe_steps, num_candidates):
    stretches.append((previous, rung, alive))
    alive, previous = max(1, math.ceil(alive / rule.halving_eta)), rung
  return stretches


def halving_survivors(rule: SelectorRule, results: Mapping[str, ProbeResult],
                      up_to: int) -> List[str]:
  """The best ceil(n / eta) non-failed candidates by their score up to probe step `up_to`."""
  lag_rule = dataclasses.replace(rule, rule="lag")
  ranked = []
  for name, result in results.items():
    value, _ = score(lag_rule, result, up_to)
    if value is not None:
      ranked.append((value, name))
  ranked.sort()
  keep = max(1, math.ceil(len(results) / rule.halving_eta))
  return [name for _, name in ranked[:keep]]


def race_segments(rule: SelectorRule, probe_steps: int, rewarmup_steps: int = 0) -> List[int]:
  """The probe steps at which a race looks: its first look (race_first_look, else the end of
  the rewarmup, else one segment), then every race_segment_steps, and k."""
  first = rule.race_first_look or rewarmup_steps or rule.race_segment_steps
  first = min(first, probe_steps)
  return list(range(first, probe_steps, rule.race_segment_steps)) + [probe_steps]


@dataclasses.dataclass
class RaceLook:
  """One look of a race at probe step `step`: who leads, who left (and why), whether it ends."""

  step: int
  leader: Optional[str]
  survivors: List[str]
  dropped: Dict[str, str]            # name -> why ('worse by 0.071 > 2.5 x 0.012', 'failed').
  stopped: Optional[str] = None      # One of RACE_STOPS, or None: the race goes on.


def race_look(rule: SelectorRule, results: Mapping[str, ProbeResult], alive: Sequence[str],
              step: int) -> RaceLook:
  """Judges the race at probe `step` from the survivors' eval losses there (pure).

  A survivor leaves when its loss is worse than the leader's by more than race_z standard
  errors of the paired per-batch differences; a failed one (or one without a finite loss at
  `step`) leaves too. The race is over when one candidate is left, or when every survivor is
  within the indifference zone: leader's loss - survivor's loss <=
  race_delta at race_z standard errors, i.e. no survivor can be better than the leader by more
  than race_delta. The probe loop adds the stops 'probe_steps' and 'budget'.
  """
  losses, dropped = {}, {}
  for name in alive:
    result = results[name]
    value = result.eval_losses.get(step)
    if result.failed or not is_finite(value):
      dropped[name] = f"failed ({result.failed or 'no finite eval loss'})"
    else:
      losses[name] = float(value)
  if not losses:
    return RaceLook(step, None, [], dropped, stopped="one_left")
  leader = min(losses, key=lambda n: (losses[n], n))
  lead_batches = results[leader].eval_batch_losses.get(step)
  survivors, margins = [leader], []
  for name in sorted(losses, key=lambda n: (losses[n], n)):
    if name == leader:
      continue
    batches = results[name].eval_batch_losses.get(step)
    paired = (batches is not None and lead_batches is not None
              and len(batches) == len(lead_batches))
    error = paired_standard_error(batches, lead_batches) if paired else math.inf
    gap = losses[name] - losses[leader]
    if gap > rule.race_z * error:
      dropped[name] = f"worse by {gap:.4f} > {rule.race_z:g} x {error:.4f}"
    else:
      survivors.append(name)
      margins.append(rule.race_z * error - gap)  # How much better it could be, at race_z.
  stopped = None
  if len(survivors) == 1:
    stopped = "one_left"
  elif max(margins) <= rule.race_delta:
    stopped = "indifferent"
  return RaceLook(step, leader, survivors, dropped, stopped)
