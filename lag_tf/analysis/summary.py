"""The numbers a report shows, computed from a `runs.StudyTable` or a `records.DecisionRecord`.

Pure (no files, no plots): the report renders these; the benchmark script can print them.

Study conventions: T is the table's final_step (the last probe step every non-failed candidate
reached), final loss is the eval loss at T; losses are averaged over seeds for correlations (the
bootstrap resamples seeds and eval batches), while regret and top-1 agreement are computed per
seed and averaged (the expected outcome of one run that chooses at t). Failed candidates are
excluded from correlations, regret and the best-final choice (see `correlation`).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

from lag_tf.analysis import correlation
from lag_tf.analysis.runs import StudyTable
from lag_tf.lag.selector import paired_standard_error
from lag_tf.records import DecisionRecord

HEADLINE_FRACTIONS = (0.01, 0.02, 0.05, 0.10)


@dataclasses.dataclass
class StudySummary:
  table: StudyTable
  mean_losses: np.ndarray                 # [candidates, steps], averaged over seeds.
  final_losses: np.ndarray                # [candidates] at T, averaged over seeds.
  spearman: correlation.BootstrapCurve
  kendall: correlation.BootstrapCurve
  pearson: np.ndarray                     # [steps], point estimates.
  regret: np.ndarray                      # [steps], mean over seeds.
  top1: np.ndarray                        # [steps], fraction of seeds whose argmin agrees.
  compute_fraction: np.ndarray            # [steps], probe compute / study compute.
  target_rho: float
  sustained: bool
  smallest_k: Optional[int]
  best_final: Optional[str]
  rows: List[dict]                        # The headline table (see `headline_rows`).

  def chosen_at(self, step: int) -> Optional[str]:
    index = int(np.flatnonzero(self.table.steps == step)[0])
    usable = np.where(np.isfinite(self.final_losses), self.mean_losses[:, index], np.nan)
    chosen = int(correlation.chosen_by_step(usable[:, None])[0])
    return self.table.names[chosen] if chosen >= 0 else None


def _bootstrap_inputs(table: StudyTable, failed: np.ndarray):
  """(per-batch losses [S, C, T, B], final [S, C, B]) or, without per-batch losses, the eval
  loss as a single batch (then only seeds are resampled). Failed candidates' finals are NaN."""
  if table.batch_losses is not None:
    final = np.where(failed[None, :, None], np.nan, table.batch_losses[:, :, -1, :])
    return table.batch_losses, final
  return table.losses[..., None], np.where(failed[None, :], np.nan, table.losses[:, :, -1])


def step_at_fraction(steps: Sequence[int], fraction: float, final_step: int) -> int:
  """The largest eval step <= fraction * T (what a probe of that budget has seen), else the
  first eval step."""
  steps = np.asarray(steps)
  eligible = steps[steps <= fraction * final_step + 1e-9]
  return int(eligible.max()) if eligible.size else int(steps.min())


def summarize_study(table: StudyTable, target_rho: float = 0.8, num_resamples: int = 1000,
                    seed: int = 0, confidence: float = 0.95, sustained: bool = True,
                    fractions: Sequence[float] = HEADLINE_FRACTIONS) -> StudySummary:
  """All study numbers; requires table.steps to be non-empty (a common eval step exists)."""
  if not table.steps.size:
    raise ValueError("the study has no eval step that every candidate reached yet")
  with np.errstate(invalid="ignore"):
    mean_losses = table.losses.mean(0)
  # A failed candidate is out even if its last eval happens to be finite (e.g. only the train
  # loss diverged): its final loss is NaN, which every function in `correlation` excludes.
  failed = np.array([n in table.failed for n in table.names])
  final_per_seed = np.where(failed[None, :], np.nan, table.final_losses)
  final = np.where(failed, np.nan, mean_losses[:, -1])
  batches, final_batches = _bootstrap_inputs(table, failed)
  curves = {
      statistic: correlation.bootstrap_correlation_by_step(
          batches, final_batches, statistic, num_resamples, confidence, "both", seed)
      for statistic in ("spearman", "kendall")}
  pearson = correlation.correlation_by_step(mean_losses, final, "pearson")
  with warnings.catch_warnings():  # All-NaN columns (nothing choosable) stay NaN, quietly.
    warnings.simplefilter("ignore", RuntimeWarning)
    regret = np.nanmean(correlation.regret(table.losses, final_per_seed), axis=0)
  top1 = correlation.top1_agreement(table.losses, final_per_seed).mean(0)

  flops = table.flops_per_step
  if not np.all(np.isfinite(flops)):
    flops = np.ones_like(flops)  # Unknown FLOPs: treat candidates as equally costly.
  final_step = table.final_step
  reached = [table.last_steps[n] if n in table.failed else final_step for n in table.names]
  compute = np.array([correlation.probe_compute_fraction(flops, t, final_step, reached)
                      if final_step > 0 else 0.0 for t in table.steps])
  smallest_k = correlation.smallest_step_reaching(table.steps, curves["spearman"].estimate,
                                                  target_rho, sustained)
  finite_final = np.isfinite(final)
  best = table.names[int(np.where(finite_final, final, np.inf).argmin())] \
      if finite_final.any() else None
  summary = StudySummary(
      table=table, mean_losses=mean_losses, final_losses=final, spearman=curves["spearman"],
      kendall=curves["kendall"], pearson=pearson, regret=regret, top1=top1,
      compute_fraction=compute, target_rho=target_rho, sustained=sustained,
      smallest_k=smallest_k, best_final=best, rows=[])
  summary.rows = headline_rows(summary, fractions)
  return summary


def headline_rows(summary: StudySummary, fractions: Sequence[float]) -> List[dict]:
  """One row each for init (step 0), each fraction of T, the smallest k, and T."""
  table = summary.table
  first = int(table.steps.min())
  labels = [("init" if first == 0 else "first eval", first)]
  labels += [(f"{f:.0%} of T", step_at_fraction(table.steps, f, table.final_step))
             for f in fractions]
  if summary.smallest_k is not None:
    labels.append((f"k (rho >= {summary.target_rho:g})", summary.smallest_k))
  labels.append(("T", table.final_step))
  rows = []
  for label, step in labels:
    i = int(np.flatnonzero(table.steps == step)[0])
    rows.append({
        "point": label, "step": step,
        "fraction_of_T": step / table.final_step if table.final_step else 0.0,
        "compute_fraction": float(summary.compute_fraction[i]),
        "spearman": float(summary.spearman.estimate[i]),
        "spearman_low": float(summary.spearman.low[i]),
        "spearman_high": float(summary.spearman.high[i]),
        "kendall": float(summary.kendall.estimate[i]),
        "kendall_low": float(summary.kendall.low[i]),
        "kendall_high": float(summary.kendall.high[i]),
        "pearson": float(summary.pearson[i]),
        "top1": float(summary.top1[i]), "regret": float(summary.regret[i]),
        "chosen": summary.chosen_at(step)})
  return rows


def study_headline(summary: StudySummary) -> dict:
  """Flat, JSON-friendly headline numbers."""
  table = summary.table
  init = summary.rows[0]  # Step 0, or the first eval if the study has none at 0.
  k = summary.smallest_k
  k_row = next((r for r in summary.rows if r["step"] == k), None) if k is not None else None
  return {
      "kind": "study", "final_step": table.final_step, "finished": table.finished,
      "num_candidates": len(table.names), "num_failed": len(table.failed),
      "num_seeds": len(table.seeds), "target_rho": summary.target_rho,
      "sustained": summary.sustained, "smallest_k": k,
      "compute_fraction_at_k": k_row["compute_fraction"] if k_row else None,
      "rho_init": init["spearman"], "rho_init_ci": [init["spearman_low"], init["spearman_high"]],
      "regret_at_init": init["regret"],
      "regret_at_k": k_row["regret"] if k_row else None,
      "best_final": summary.best_final, "chosen_at_init": init["chosen"],
      "chosen_at_k": k_row["chosen"] if k_row else None,
      "rows": summary.rows}


# --- LAG / gradual stages. ----------------------------------------------------------------------

SEPARATION_Z = 2.0


def scratch_comparison(grown_loss: float, grown_batch_losses: Sequence[float],
                       scratch_loss: float, scratch_batch_losses: Sequence[float],
                       steps: int, seed_spread: float = 0.0) -> str:
  """One sentence (summary.md, report.md): the winner's final eval loss against the scratch
  baseline's, `steps` steps of the grown config at the run's FLOPs. Both are evals on the same
  fixed held-out batches (the eval loss and its per-batch losses), so the comparison is paired:
  the difference with the standard error of its per-batch differences.

  That error is one run's: another seed (or another machine's kernels) moves the difference by
  more. `seed_spread` is the difference's standard deviation over seeds measured for this
  config (lag_experiment.seed_spread); it joins the error, and within SEPARATION_Z of the
  combined error the verdict is "within noise", not a win. Without it the sentence says the
  spread is missing."""
  difference = grown_loss - scratch_loss
  error = paired_standard_error(grown_batch_losses, scratch_batch_losses)
  noise = float(np.hypot(error, seed_spread))
  verdict = ("growing beat scratch" if difference < -SEPARATION_Z * noise else
             "scratch beat growing" if difference > SEPARATION_Z * noise else
             f"within noise (|difference| <= {SEPARATION_Z:g} x {noise:.4f})")
  spread = (f" and a seed-to-seed spread of {seed_spread:.4f} measured for this config"
            if seed_spread else "; one seed, the seed-to-seed spread not included: "
            "lag_experiment.seed_spread adds it")
  return (f"scratch baseline at equal FLOPs ({steps} steps of the grown model's config from "
          "random initialization, probes and the evaluations the decision read included in the "
          f"budget): eval loss "
          f"{scratch_loss:.4f} vs the winner's {grown_loss:.4f}, difference "
          f"{difference:+.4f} (paired standard error {error:.4f} over the eval batches"
          f"{spread}): {verdict}.")


def ranks(values: Dict[str, float]) -> Dict[str, Optional[int]]:
  """1 = the lowest value; None for a value that is not finite."""
  finite = sorted((v, n) for n, v in values.items() if np.isfinite(v))
  ranked = {n: None for n in values}
  ranked.update({n: i + 1 for i, (_, n) in enumerate(finite)})
  return ranked


def summarize_stage(decision: DecisionRecord) -> dict:
  """Per candidate: status, params, eval loss at probe step 0 and score at k (the record's
  score if it has one, else the eval loss at the last probe eval <= k), and their ranks
  (failed candidates: n/a); plus which candidate the init-loss rule would have picked (ties go
  to the first name)."""
  k = decision.k
  at_init, at_k, rows = {}, {}, []
  candidates = sorted(decision.candidates.items())
  for name, outcome in candidates:
    at_init[name] = outcome.eval_losses.get(0, float("nan"))
    at_k[name] = (outcome.score if outcome.score is not None
                  else outcome.loss_at_or_before(k))
  # A failed candidate is never ranked, as no rule can pick it ('eliminated' ones could be).
  ranked = [n for n, c in decision.candidates.items() if c.status != "failed"]
  init_ranks = ranks({n: at_init[n] for n in ranked})
  k_ranks = ranks({n: at_k[n] for n in ranked})
  for name, outcome in candidates:
    status = outcome.status
    if outcome.failed:  # The reason, as lag/stage.py records it.
      status += f": {outcome.failed}"
    rows.append({"name": name, "status": status, "params": outcome.params,
                 "flops_per_token": outcome.flops_per_token, "loss_at_init": at_init[name],
                 "score_at_k": at_k[name], "rank_at_init": init_ranks.get(name),
                 "rank_at_k": k_ranks.get(name), "winner": name == decision.winner})
  by_init = [n for n, r in init_ranks.items() if r == 1]
  return {"stage": decision.stage, "rule": decision.rule, "winner": decision.winner,
          "probe_steps": k, "init_choice": by_init[0] if by_init else None,
          "probe_cost_flops": decision.probe_cost_flops, "config_hash": decision.config_hash,
          "committed_at": decision.committed_at, "candidates": rows}


def decision_notes(record: DecisionRecord) -> List[str]:
  """What a decision's candidate table does not show, a line each (summary.md and the analysis
  report): the candidates tied with the winner, and how a race ran."""
  notes = []
  others = [n for n in record.tied_with if n != record.winner]
  if others:
    notes.append(f"tied with the winner (within the tie margin of paired standard errors): "
                 f"{', '.join(others)}; the choice among them is within noise"
                 + (", so the cheapest was taken" if record.tie_broken_by_cost else ""))
  if record.race:
    race = record.race
    left = ", ".join(f"{n} at {v['step']}" for n, v in sorted(
        race.get("left", {}).items(), key=lambda kv: (kv[1]["step"], kv[0])))
    notes.append(f"race: stopped ({_RACE_STOPS.get(race.get('stopped'), race.get('stopped'))}) "
                 f"at probe step {race.get('at_step')} of {record.probe_steps}; left the race: "
                 f"{left or 'none'}")
  return notes


_RACE_STOPS = {"one_left": "one candidate left", "indifferent":
               "every survivor within the indifference zone of the leader",
               "probe_steps": "reached k", "budget": "probe budget spent"}
