"""summary.md of a run, by its schedule's kind: what the executor's result says, for a reader.

tests/test_readme.py holds README's annotated excerpt of a `lag` summary to `lag_markdown`.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

from lag_tf import atomic_file
from lag_tf import model_dir_store as store
from lag_tf.analysis import summary as summary_lib
from lag_tf.experiments.schedule import RunSchedule
from lag_tf.records import DecisionRecord

NO_BASELINE = "no scratch baseline in this run (lag_experiment.scratch_baseline = True adds one)"


def compute_text(flops: Dict[str, float]) -> str:
  """The compute line: each phase in TFLOPs and deciding's share of the total."""
  phases = ", ".join(f"{k} {v / 1e12:.2f}" for k, v in flops.items())
  return (f"compute, TFLOPs: {phases}; deciding (probes and their evaluations) took "
          f"{(flops['probes'] + flops['decision evals']) / flops['total']:.1%} of it")


def write(model_dir: str, schedule: RunSchedule, result: dict, tables: List[str],
          baseline: Optional[str]) -> None:
  """Writes <model_dir>/summary.md (the chief's job)."""
  if schedule.kind == "lag":
    checkpoint = store.checkpoint_dir(store.candidate_dir(model_dir, result["winner"]))
    text = lag_markdown(tables[0], result["winner"], result["steps"], result["final_eval_loss"],
                        os.path.relpath(checkpoint, model_dir), result["flops"],
                        baseline or NO_BASELINE)
  elif schedule.kind == "gradual":
    text = _gradual_markdown(schedule.mode, result, tables)
  else:
    text = _train_markdown(schedule, result)
  atomic_file.write_text(store.summary_path(model_dir), text)


def lag_markdown(table: str, winner: str, steps: int, final_eval_loss: float, checkpoint: str,
                 flops: dict, baseline: str) -> str:
  """A `lag` run's: the stage's table, the winner's continuation, the compute by phase and the
  scratch baseline's verdict."""
  return ("# LAG summary\n\n" + table + "\n\n" +
          f"winner `{winner}` continued to step {steps}: final eval loss {final_eval_loss:.4f} "
          f"(checkpoint: {checkpoint})\n\n"
          f"{compute_text(flops)}\n\n"
          f"{baseline}\n")


def _gradual_markdown(mode: str, result: dict, tables: List[str]) -> str:
  lines = [f"# gradual summary ({mode})", ""]
  for table in tables:
    lines += [table, ""]
  lines.append(f"final eval loss {result['final_eval_loss']:.4f} after {result['steps']} steps")
  if tables:
    lines.append(f"stage winners: {' -> '.join(result['winners'])}")
    lines.append(compute_text(result["flops"]))
  return "\n".join(lines) + "\n"


def _train_markdown(schedule: RunSchedule, result: dict) -> str:
  config = schedule.base.config
  lines = ["# train summary", "",
           f"model: {config.kind}, {config.num_layers} layers x d_model {config.d_model}, "
           f"{result['params']:,} parameters", f"steps: {result['steps']}",
           f"final eval loss: {result['final_eval_loss']:.4f}",
           f"training compute: {result['flops'] / 1e12:.4g} TFLOPs"]
  if result["first_eval_loss"] is not None:
    lines.append(f"eval loss at step 0: {result['first_eval_loss']:.4f}")
  return "\n".join(lines) + "\n"


def summary_table(record: DecisionRecord) -> str:
  """Markdown: the candidate table (status, params, eval loss at 0 and at k, probe cost), the
  candidates tied with the winner, how a race ran, and what deciding cost."""
  k = record.probe_steps
  lines = [f"stage {record.stage} — rule `{record.rule}`, probe k={k} steps, winner "
           f"**{record.winner}**", "",
           "| candidate | status | params | loss@0 | loss@k | probe GFLOPs | preserving |",
           "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
  for name in record.ranking:
    c = record.candidates[name]
    losses = c.eval_losses
    at_zero = _fmt(losses.get(0))
    at_k = _fmt(losses.get(k)) if k in losses else (_fmt(losses[max(losses)]) + "*"
                                                    if losses else "-")
    mark = " ←" if name == record.winner else ""
    status = (f"left at {c.left_race_at}" if c.left_race_at is not None and c.status != "failed"
              else c.status)
    lines.append(f"| {name}{mark} | {status} | {c.params:,} | {at_zero} | {at_k} | "
                 f"{(c.probe_flops + c.probe_eval_flops) / 1e9:.1f} | "
                 f"{'yes' if c.function_preserving else 'no'} |")
  lines += [""] + summary_lib.decision_notes(record)
  budget = (f"; budget {record.probe_budget_flops / 1e9:.1f} GFLOPs"
            if record.probe_budget_flops else "")
  lines.append(f"probe cost: {record.probe_cost_steps} candidate-steps, "
               f"{record.probe_cost_flops / 1e9:.1f} GFLOPs of training + "
               f"{record.probe_eval_flops / 1e9:.1f} GFLOPs of decision evaluations "
               f"({record.probe_evals} evaluations){budget}"
               + ("; * = eliminated early (loss at its last probe step)"
                  if any(c.status == "eliminated" for c in record.candidates.values())
                  else ""))
  return "\n".join(lines)


def _fmt(value: Optional[float]) -> str:
  return "-" if value is None else f"{float(value):.4f}"
