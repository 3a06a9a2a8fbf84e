"""Probe overhead: the share of a LAG run's training FLOPs spent on probing candidates, with
full probing and with successive halving, for a LAG experiment gin file.

FLOPs are counted (PaLM appendix B, lag_tf.models.flops), not timed, so this needs no training:
it reads the experiment's config and adds up base, probe and continuation FLOPs exactly as a
run's decision record and summary.md do. A finished run's summary.md can be compared with it.

  python benchmarks/probe_overhead.py [--gin_file=gin/experiments/lag_quickstart.gin]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gin  # noqa: E402

from lag_tf import config_io  # noqa: E402
from lag_tf.growth import validate_pool  # noqa: E402
from lag_tf.lag.schedule import ProbeSchedule  # noqa: E402
from lag_tf.lag.selector import SelectorRule, halving_rungs  # noqa: E402
from lag_tf.models import TransformerConfig  # noqa: E402
from lag_tf.models.flops import training_flops_per_token  # noqa: E402


def phase_flops(rule: SelectorRule, schedule: ProbeSchedule, base: TransformerConfig,
                targets: dict, base_steps: int, continue_steps: int, tokens_per_step: int):
  """(base, probes, continuation) FLOPs. Successive halving keeps the best ceil(n/eta) at each
  rung; every candidate is assumed to cost what its target config costs (they share a target)."""
  per_step = {name: tokens_per_step * training_flops_per_token(t) for name, t in targets.items()}
  names = list(targets)
  if rule.rule == "successive_halving":
    rungs = halving_rungs(rule, schedule.probe_steps, len(names))
    probes, alive, previous = 0.0, len(names), 0
    for rung in rungs:
      probes += alive * (rung - previous) * max(per_step.values())
      previous = rung
      alive = max(1, -(-alive // rule.halving_eta))
  else:
    probes = sum(schedule.probe_steps * f for f in per_step.values())
  base_flops = base_steps * tokens_per_step * training_flops_per_token(base)
  continuation = continue_steps * max(per_step.values())
  return base_flops, probes, continuation


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--gin_file", default="gin/experiments/lag_quickstart.gin")
  args = parser.parse_args()
  config_io.parse([args.gin_file], [])
  base = TransformerConfig()
  bound = gin.get_bindings("lag_experiment")  # References and macros resolved.
  targets = validate_pool(bound["pool"], base)
  schedule = ProbeSchedule()
  base_steps, continue_steps = bound["base_steps"], bound["continue_steps"]
  tokens = gin.query_parameter("Trainer.global_batch_size") * base.max_len
  print(f"{args.gin_file}: {len(targets)} candidates, k = {schedule.probe_steps}, base "
        f"{base_steps} steps, winner continues {continue_steps} steps, {tokens} tokens/step")
  print(f"{'probing':22s} {'base TFLOPs':>12s} {'probes':>9s} {'continue':>9s} {'total':>9s} "
        f"{'probe share':>12s}")
  shares = {}
  for label, rule in (("full (lag)", SelectorRule(rule="lag")),
                      ("successive halving", SelectorRule(rule="successive_halving",
                                                          halving_eta=2))):
    flops = phase_flops(rule, schedule, base, targets, base_steps, continue_steps, tokens)
    total = sum(flops)
    shares[label] = flops[1] / total
    print(f"{label:22s} {flops[0] / 1e12:12.2f} {flops[1] / 1e12:9.2f} {flops[2] / 1e12:9.2f} "
          f"{total / 1e12:9.2f} {shares[label]:12.1%}")
  print(f"probe_share_full={shares['full (lag)']:.3f} "
        f"probe_share_halving={shares['successive halving']:.3f}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
