"""Probe overhead: the share of a LAG run's FLOPs spent deciding (every candidate's probe and
the evaluations its decision reads), with full probing, successive halving and a race (its
worst case: nobody leaves), for a LAG experiment gin file, without the file's probe budget.

FLOPs are counted (PaLM appendix B, lag_tf.models.flops), not timed, so this needs no training:
it reads the run's plan (lag_tf.plan, which --dry_run prints and the run's decision records and
summary.md match). A finished run's summary.md can be compared with it.

  python benchmarks/probe_overhead.py [--gin_file=gin/experiments/lag_quickstart.gin]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


from lag_tf import config_io  # noqa: E402
from lag_tf import configurables  # noqa: E402,F401  Registers every configurable.
from lag_tf import plan as plan_lib  # noqa: E402

RULES = (("full (lag)", "lag", "full"), ("successive halving", "successive_halving", "halving"),
         ("race, worst case", "race", "race_worst"))


def phase_flops(run_plan: plan_lib.Plan):
  """(base, probe training, decision evaluations, continuation) FLOPs of a LAG run's plan."""
  by_role = {}
  for phase in run_plan.phases:
    by_role[phase.role] = by_role.get(phase.role, 0.0) + phase.flops
  return tuple(by_role.get(role, 0.0) for role in ("base", "probe", "decision evals",
                                                   "continue"))


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--gin_file", default="gin/experiments/lag_quickstart.gin")
  args = parser.parse_args()
  print(f"{args.gin_file} (the plan of lag_tf.plan, as --dry_run prints it)")
  print(f"{'probing':22s} {'base TFLOPs':>12s} {'probes':>9s} {'evals':>9s} {'continue':>9s} "
        f"{'total':>9s} {'deciding share':>15s}")
  shares = {}
  for label, rule, key in RULES:
    config_io.parse([args.gin_file], [f"SelectorRule.rule = '{rule}'",
                                      "SelectorRule.probe_budget_share = 0.0",
                                      "lag_experiment.scratch_baseline = False"])
    flops = phase_flops(plan_lib.build_plan(replicas=1))
    total = sum(flops)
    shares[key] = (flops[1] + flops[2]) / total
    print(f"{label:22s} {flops[0] / 1e12:12.2f} {flops[1] / 1e12:9.2f} {flops[2] / 1e12:9.2f} "
          f"{flops[3] / 1e12:9.2f} {total / 1e12:9.2f} {shares[key]:15.1%}")
  print(" ".join(f"probe_share_{key}={shares[key]:.3f}" for _, _, key in RULES))
  return 0


if __name__ == "__main__":
  sys.exit(main())
