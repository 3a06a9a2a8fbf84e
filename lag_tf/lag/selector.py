"""Selector rules: which probed candidate to commit. Pure functions on probe results.

Rules (DESIGN.md, "What LAG is"):
  init_loss           rank by eval loss at probe step 0 (the grown model at initialization); the
                      baseline the LAG paper argues against.
  lag                 rank by eval loss after k probe steps, optionally averaged over the last m
                      evals.
  successive_halving  the same score, but the probe itself is staged: all candidates for k0
                      steps, keep the best 1/eta, extend the survivors, ... (see
                      `halving_rungs` / `halving_survivors`; the probe loop drives it).

Noise-aware ties: all candidates are evaluated on the same held-out batches, so the noise in a
*difference* of scores is the standard error of the per-batch paired differences. A candidate
whose score is within `tie_z` such standard errors of the best one ties with it; ties are broken
by lower cost (parameters, then FLOPs per token), and the decision says so. A candidate whose
loss is NaN or Inf has failed and never wins.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, List, Mapping, Optional, Sequence

import gin
import numpy as np

RULES = ("init_loss", "lag", "successive_halving")


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
  eliminated: List[str] = dataclasses.field(default_factory=list)  # By successive halving.

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class SelectorRule:
  """rule: one of RULES. average_last: m, the number of last evals averaged by 'lag'.
  tie_z: ties within this many standard errors of the paired difference (0 disables ties).
  halving_eta, halving_min_steps: successive halving's keep fraction 1/eta and first rung k0.
  """

  rule: str = "lag"
  average_last: int = 1
  tie_z: float = 1.0
  halving_eta: int = 2
  halving_min_steps: int = 0

  def __post_init__(self):
    if self.rule not in RULES:
      raise ValueError(f"SelectorRule.rule={self.rule!r}: expected one of {RULES}")
    if self.average_last < 1:
      raise ValueError(f"SelectorRule.average_last={self.average_last}: expected >= 1")
    if self.rule == "successive_halving" and self.halving_eta < 2:
      raise ValueError(f"SelectorRule.halving_eta={self.halving_eta}: expected >= 2")


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
  if rule.rule == "successive_halving":
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
