"""What a growth run spent, by phase, from its committed decisions: the FLOPs a `lag` or
`gradual` run records (summary.md and its result), in the convention of lag_tf.plan's phases
(lag_tf.models.flops), so a test can hold a run to its plan."""

from __future__ import annotations

from typing import Dict, Optional, Sequence

from lag_tf.models import TransformerConfig
from lag_tf.models.flops import flops_per_token
from lag_tf.records import DecisionRecord


def compute_by_phase(base_config: TransformerConfig, base_steps: int,
                     records: Sequence[DecisionRecord],
                     winner_configs: Sequence[TransformerConfig],
                     steps_after_growth: Sequence[int],
                     mask_probability: Optional[float]) -> Dict[str, float]:
  """FLOPs of each phase: the base model, the probes (every candidate's training), the
  evaluations the decisions read (forward passes), the winners' continuations; and their total.

  records / winner_configs / steps_after_growth: per growth, its decision, the winner's config
  and the steps the winner trains after growth in all. Its continuation is what its probe did
  not train: a race that stops at step 5 of k leaves k - 5 more steps to the continuation.
  mask_probability: the run's (models/flops.flops_per_token, as the records' probes).
  """
  tokens = records[0].tokens_per_step
  continue_steps = [steps - int(r.candidates[r.winner].probe_steps_trained)
                    for r, steps in zip(records, steps_after_growth)]
  phases = {"base": base_steps * tokens * flops_per_token(base_config, mask_probability),
            "probes": sum(float(r.probe_cost_flops) for r in records),
            "decision evals": sum(float(r.probe_eval_flops) for r in records),
            "continuation": sum(steps * tokens * flops_per_token(config, mask_probability)
                                for config, steps in zip(winner_configs, continue_steps))}
  phases["total"] = sum(phases.values())
  return phases


def compute_text(flops: Dict[str, float]) -> str:
  """summary.md's compute line: each phase in TFLOPs and deciding's share of the total."""
  phases = ", ".join(f"{k} {v / 1e12:.2f}" for k, v in flops.items())
  return (f"compute, TFLOPs: {phases}; deciding (probes and their evaluations) took "
          f"{(flops['probes'] + flops['decision evals']) / flops['total']:.1%} of it")
