"""What each selection rule paid for one candidate of its pools, from a suite's committed records.

A rule that cannot tell a clearly bad candidate early pays for it in full: fixed-k LAG trains it
for k steps and evaluates it at every probe eval step in every stage, a race drops it at a look.
`candidate_spend` reads that from the decision records (`records.read_records`), in the
suite's FLOP convention (each probe step at the plan's FLOPs per step of that stage, the
candidate's decision evaluations as recorded: lag_tf.models.flops, as `runs`), and
`spend_table` puts it beside each method's final loss.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional

from benchmarks.speedup.budget import METHODS
from benchmarks.speedup.frontier import mean_ci, paired_difference
from benchmarks.speedup.records import RunRecord
from benchmarks.speedup.report import fmt_ci
from benchmarks.speedup.runs import run_from_record
from lag_tf.analysis.runs import as_float


@dataclasses.dataclass(frozen=True)
class CandidateSpend:
  """One stage's decision of one run, as it concerned `candidate`."""

  method: str
  seed: int
  stage: int
  probe_steps: int          # Steps the candidate trained in its probe.
  flops: float              # Those steps plus its decision evaluations (suite convention).
  left_race_at: Optional[int]  # The race's probe step it was dropped at (None: not dropped).
  picked: bool


def candidate_spend(records: List[RunRecord], candidate: str) -> List[CandidateSpend]:
  """Every finished run's decisions among two or more candidates that included `candidate`,
  in (method, seed, stage) order."""
  rows = []
  for record in records:
    run = record.run
    if not run.finished:
      continue
    for decision, phase in zip(record.decisions, run.plan.phases[1:]):
      outcome = decision.candidates.get(candidate)
      if outcome is None or len(decision.candidates) < 2:  # A pool of one decides nothing.
        continue
      steps = int(outcome.probe_steps_trained)
      rows.append(CandidateSpend(
          method=run.method, seed=int(run.seed), stage=int(decision.stage),
          probe_steps=steps,
          flops=steps * float(phase.flops_per_step) + as_float(outcome.probe_eval_flops),
          left_race_at=outcome.left_race_at, picked=decision.winner == candidate))
  return sorted(rows, key=lambda r: (r.method, r.seed, r.stage))


def spend_table(records: List[RunRecord], candidate: str, reference: str = "gradual_stacking") -> str:
  """Markdown: per method whose pools held `candidate`, how often it was offered and picked,
  the probe steps it trained, the FLOPs spent on it in the decisions it lost (a share of the
  budget, mean per run), where a race dropped it, what the method's decisions cost in all, and
  its final eval loss (mean [95% t-interval] over seeds; paired over seeds against
  `reference`)."""
  runs: Dict[str, Dict[int, object]] = {}
  for record in records:
    if record.run.finished and not record.run.method.startswith("frontier_"):
      runs.setdefault(record.run.method, {})[int(record.run.seed)] = run_from_record(record)
  spends = candidate_spend(records, candidate)
  lines = [f"| method | seeds | stages offered `{candidate}` | picked | probe steps on it "
           f"| left the race at | FLOPs on it when it lost / budget | deciding / budget | "
           f"final eval loss | vs {reference} |",
           "| --- | ---: | ---: | ---: | --- | --- | ---: | ---: | --- | --- |"]
  order = {m: i for i, m in enumerate(METHODS)}
  for method in sorted({s.method for s in spends}, key=lambda m: (order.get(m, len(order)), m)):
    rows = [s for s in spends if s.method == method]
    by_seed = runs[method]
    seeds = sorted(by_seed)
    budget = {seed: by_seed[seed].budget_flops for seed in seeds}
    spent = [sum(r.flops for r in rows if r.seed == seed and not r.picked) / budget[seed]
             for seed in seeds]
    deciding = [by_seed[seed].overhead_flops / budget[seed] for seed in seeds]
    losses = [by_seed[seed].curve.losses[-1] for seed in seeds]
    steps = sorted({r.probe_steps for r in rows})
    left = sorted({r.left_race_at for r in rows if r.left_race_at is not None})
    versus = "-"
    if reference in runs and method != reference:
      shared = [seed for seed in seeds if seed in runs[reference]]
      versus = fmt_ci(*paired_difference(
          [by_seed[s].curve.losses[-1] for s in shared],
          [runs[reference][s].curve.losses[-1] for s in shared]), signed=True)
    lines.append(
        f"| {method} | {len(seeds)} | {len(rows)} | {sum(r.picked for r in rows)} | "
        f"{', '.join(map(str, steps))} | {', '.join(map(str, left)) or '-'} | "
        f"{sum(spent) / len(spent):.1%} | {sum(deciding) / len(deciding):.1%} | "
        f"{fmt_ci(*mean_ci(losses))} | {versus} |")
  return "\n".join(lines)


def picks_table(records: List[RunRecord], methods) -> str:
  """Markdown: per seed, each method's committed candidates (stage by stage) and final eval
  loss, so that where two rules chose differently, and whether it paid, can be read off."""
  picks: Dict[int, Dict[str, tuple]] = {}
  for record in records:
    run = record.run
    if run.finished and run.method in methods:
      picks.setdefault(int(run.seed), {})[run.method] = (
          [winner or "?" for winner in record.winners], record.final_loss)
  lines = ["| seed | " + " | ".join(methods) + " |", "| ---: |" + " --- |" * len(methods)]
  for seed, by_method in sorted(picks.items()):
    cells = [f"{' → '.join(by_method[m][0])} ({by_method[m][1]:.3f})" if m in by_method
             else "-" for m in methods]
    lines.append(f"| {seed} | " + " | ".join(cells) + " |")
  return "\n".join(lines)
