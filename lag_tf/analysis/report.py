"""`DIR/report/report.md` and its PNGs for a study, a LAG run or an adaptive gradual run.

`build_report` reads the directory (`runs`), computes the numbers (`summary`), draws the plots
(`plots`), writes the markdown and returns the headline numbers as a JSON-friendly dict;
`format_headline` renders that dict as the table the binary prints. Works on partly finished
studies: T is the last eval step every non-failed candidate reached, and the report says so.
"""

from __future__ import annotations

import math
import os
from typing import List, Optional

import numpy as np

from lag_tf import atomic_file
from lag_tf import model_dir_store as store
from lag_tf.analysis import plots, runs, summary as summary_lib
from lag_tf.records import DecisionRecord, MetricsRow


def _fmt(value, digits: int = 3) -> str:
  if value is None or (isinstance(value, float) and not math.isfinite(value)):
    return "n/a"
  if isinstance(value, float):
    return f"{value:.3g}" if abs(value) >= 1e5 else f"{value:.{digits}f}"
  return str(value)


def _with_ci(value: float, low: float, high: float) -> str:
  if not (math.isfinite(low) and math.isfinite(high)):
    return _fmt(value)
  return f"{_fmt(value)} [{_fmt(low)}, {_fmt(high)}]"  # The estimate's digits: a bound that
  # ends at its estimate (common for a rank correlation over few candidates) must read so.


def _percent(value: Optional[float]) -> str:
  return "n/a" if value is None or not math.isfinite(value) else f"{100 * value:.3g}%"


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  return lines + ["| " + " | ".join(row) + " |" for row in rows]


# --- Study. -------------------------------------------------------------------------------------

def headline_table(rows: List[dict]) -> List[str]:
  """The headline rows (see `summary.headline_rows`) as a markdown table."""
  return _table(
      ["at", "probe step", "probe compute", "Spearman rho (CI)", "Kendall tau (CI)", "Pearson r",
       "top-1", "regret", "chosen"],
      [[r["point"], str(r["step"]), _percent(r["compute_fraction"]),
        _with_ci(r["spearman"], r["spearman_low"], r["spearman_high"]),
        _with_ci(r["kendall"], r["kendall_low"], r["kendall_high"]), _fmt(r["pearson"]),
        _fmt(r["top1"], 2), _fmt(r["regret"], 4), r["chosen"] or "n/a"] for r in rows])


def step_table(study: summary_lib.StudySummary, steps, rewarmup_steps: int) -> List[str]:
  """Spearman rho (CI), top-1 and regret at each of `steps` (those the study evaluated), each
  marked inside, at the end of or after the post-growth learning-rate rewarmup: does ranking in the
  rewarmup mislead (docs/results.md, the correlation study)?"""
  rows = []
  for step in steps:
    found = np.flatnonzero(study.table.steps == step)
    if not found.size:
      continue
    i = int(found[0])
    where = ("inside" if step < rewarmup_steps else "end" if step == rewarmup_steps
             else "after")
    rows.append([str(step), where,
                 _with_ci(study.spearman.estimate[i], study.spearman.low[i],
                          study.spearman.high[i]),
                 _fmt(study.top1[i], 2), _fmt(study.regret[i], 4), study.chosen_at(step) or "n/a"])
  return _table(["probe step", "rewarmup", "Spearman rho (CI)", "top-1", "regret", "chosen"],
                rows)


def _final_step_note(table: runs.StudyTable) -> str:
  if table.finished:
    return (f"T = probe step {table.final_step}: every candidate that did not fail stopped "
            "there (final loss = eval loss at T).")
  reached = ", ".join(f"{n}: {s}" for n, s in sorted(table.last_steps.items()))
  return (f"**Partly finished study.** T = probe step {table.final_step}, the last eval step "
          f"every candidate that did not fail reached; final loss means loss at that T. Last "
          f"eval steps reached: {reached}.")


def _candidate_rows(study: summary_lib.StudySummary) -> List[List[str]]:
  table, losses, final = study.table, study.mean_losses, study.final_losses
  k_index = int(np.flatnonzero(table.steps == study.smallest_k)[0]) \
      if study.smallest_k is not None else None

  def ranks(values):
    return summary_lib.ranks(dict(zip(table.names, values)))

  init_ranks, final_ranks = ranks(losses[:, 0]), ranks(final)
  k_ranks = ranks(losses[:, k_index]) if k_index is not None else {}
  rows = []
  for i, name in enumerate(table.names):
    excluded = name in table.failed
    rows.append([
        name + (" *" if name == study.best_final else ""), _fmt(table.params.get(name)),
        _fmt(table.function_preserving.get(name)), _fmt(float(losses[i, 0])),
        _fmt(float(losses[i, k_index])) if k_index is not None else "n/a",
        _fmt(float(final[i])), _fmt(init_ranks.get(name)),
        _fmt(k_ranks.get(name)), _fmt(final_ranks.get(name)), str(table.last_steps[name]),
        f"failed: {table.failed[name]} (excluded)" if excluded else "ok"])
  return rows


def _study_section(directory: str, source: runs.Study, target_rho: float, num_resamples: int,
                   seed: int, confidence: float, sustained: bool):
  table = runs.study_table(source)
  seeds = f", {len(table.seeds)} seeds" if len(table.seeds) > 1 else ""
  lines = [f"## Study: {len(table.names)} candidates{seeds}", ""]
  if not table.steps.size:
    lines += ["No eval step is shared by every candidate yet; nothing to correlate.", ""]
    return lines, {"kind": "study", "final_step": None, "num_candidates": len(table.names),
                   "rows": []}
  study = summary_lib.summarize_study(table, target_rho, num_resamples, seed, confidence,
                                      sustained)
  headline = summary_lib.study_headline(study)
  headline["plots"] = _study_plots(study, source, headline, directory)
  k = study.smallest_k
  staying = " and stays there at every later eval" if sustained else ""
  lines += [_final_step_note(table), "", "### Headline", ""] + headline_table(study.rows) + [""]
  if k is None:
    lines.append(f"Spearman rho never reaches {target_rho:g}{staying} before T.")
  else:
    lines.append(f"Smallest k with Spearman rho >= {target_rho:g}{staying}: **k = {k}** "
                 f"(probe compute {_percent(headline['compute_fraction_at_k'])} of the study).")
  lines += ["", f"Best final loss: **{study.best_final}**. Choosing by loss at init picks "
            f"{headline['chosen_at_init']} (regret {_fmt(headline['regret_at_init'], 4)}); "
            f"choosing at k picks {headline['chosen_at_k'] or 'n/a'} "
            f"(regret {_fmt(headline['regret_at_k'], 4)}).", "",
            "### Candidates", "", "`*` best final loss; ranks are 1 = lowest loss; losses are "
            "eval losses averaged over seeds.", ""]
  lines += _table(["candidate", "params", "function-preserving", "loss at init",
                   f"loss at k={k if k is not None else '?'}", f"final loss (T={table.final_step})",
                   "rank init", "rank k", "rank final", "last eval step", "status"],
                  _candidate_rows(study))
  lines += ["", "### Plots", ""]
  for title, path in headline["plots"].items():
    lines += [f"![{title}]({os.path.basename(path)})", ""]
  resampled = "seeds and eval batches" if table.batch_losses is not None else \
      "seeds (no per-batch eval losses were logged)"
  lines += ["### Method", "",
            f"* Correlations are across candidates between eval loss at probe step t and at T. "
            f"Intervals: {confidence:.0%} percentile bootstrap, {num_resamples} resamples of "
            f"{resampled}, rng seed {seed}; n/a when there is nothing to resample.",
            "* Failed candidates (non-finite loss) are excluded from correlations, regret and "
            "the best choice; with fewer than 3 candidates left a correlation is n/a.",
            "* Regret = final loss of the candidate with the lowest loss at t minus the best final"
            " loss (per seed, then averaged); top-1 = fraction of seeds where they coincide.",
            "* Probe compute = FLOPs of training every candidate for t steps over the FLOPs of "
            "training all of them for T steps (from candidate.json; equal costs if unknown).", ""]
  return lines, headline


def _study_plots(study: summary_lib.StudySummary, source: runs.Study, headline: dict,
                 directory: str) -> dict:
  """Writes the study's three PNGs; returns title -> path."""
  table = study.table
  highlight = [n for n in (study.best_final, headline["chosen_at_init"], headline["chosen_at_k"])
               if n is not None]
  highlight = list(dict.fromkeys(highlight))
  if len(table.seeds) == 1:  # One seed: each candidate's whole curve, also past T.
    curves = {n: (r.eval_steps, r.eval_losses) for n, r in source.runs[table.seeds[0]].items()}
  else:
    curves = {n: (table.steps, study.mean_losses[i]) for i, n in enumerate(table.names)}
  return {
      "eval loss after growth": plots.plot_eval_curves(
          curves, os.path.join(directory, "eval_curves.png"), highlight,
          title="Eval loss after growth (bold: best final, chosen at init, at k)",
          marked_step=study.smallest_k),
      "correlation with final loss": plots.plot_correlation(
          table.steps, [study.spearman, study.kendall],
          os.path.join(directory, "correlation.png"), study.target_rho, study.smallest_k),
      "regret against probe compute": plots.plot_regret_vs_compute(
          study.compute_fraction, study.regret, os.path.join(directory, "regret.png"),
          table.steps)}


# --- LAG / gradual. -----------------------------------------------------------------------------

def _stage_section(decision: DecisionRecord, probes: Optional[dict],
                   directory: str) -> tuple:
  stage = summary_lib.summarize_stage(decision)
  k = stage["probe_steps"]
  lines = [f"### Stage {decision.stage}: winner **{stage['winner']}**", "",
           f"rule `{stage['rule']}`, k = {_fmt(k)} probe steps, probe cost "
           f"{_fmt(stage['probe_cost_flops'])} FLOPs of training + "
           f"{_fmt(decision.probe_eval_flops)} FLOPs of the evaluations the decision read, "
           f"config {_fmt(stage['config_hash'])}, committed {_fmt(stage['committed_at'])}.", ""]
  for note in summary_lib.decision_notes(decision):
    lines += [note[0].upper() + note[1:] + ".", ""]
  lines += _table(["candidate", "params", "status", "loss at 0", f"score at k={_fmt(k)}",
                   "rank at 0", "rank at k", "winner"],
                  [[r["name"], _fmt(r["params"]), str(r["status"]), _fmt(r["loss_at_init"]),
                    _fmt(r["score_at_k"]), _fmt(r["rank_at_init"]), _fmt(r["rank_at_k"]),
                    "**winner**" if r["winner"] else ""] for r in stage["candidates"]])
  init_choice = stage["init_choice"]
  agreement = "agrees" if init_choice == stage["winner"] else "differs"
  lines += ["", f"Choosing by loss at init would pick {_fmt(init_choice)} ({agreement})."
            if init_choice else "No eval at probe step 0 was recorded.", ""]
  losses = {n: c.eval_losses for n, c in decision.candidates.items()}
  if not any(losses.values()) and probes:
    losses = {n: dict(zip(r.eval_steps.tolist(), r.eval_losses.tolist()))
              for n, r in probes.items()}
  if any(losses.values()):
    status = {r["name"]: r["status"].split(":")[0] for r in stage["candidates"]}
    path = plots.plot_stage_decision(decision.stage, losses, stage["winner"],
                                     os.path.join(directory, f"stage-{decision.stage}.png"),
                                     status)
    lines += [f"![stage {decision.stage}]({os.path.basename(path)})", ""]
    stage["plot"] = path
  return lines, stage


def _lag_section(lag: runs.LagRun, kind: str, directory: str):
  lines = [f"## {'Adaptive gradual stacking' if kind == 'gradual' else 'LAG'} run: "
           f"{len(lag.stages)} stage(s)", ""]
  stages = []
  for decision in lag.stages:
    stage_lines, stage = _stage_section(decision, lag.stage_candidates.get(decision.stage),
                                        directory)
    lines += stage_lines
    stages.append(stage)
  headline = {"kind": kind, "num_stages": len(stages),
              "winners": {str(s["stage"]): s["winner"] for s in stages},
              "init_choices": {str(s["stage"]): s["init_choice"] for s in stages},
              "stages": stages}
  return lines, headline


def _base_section(rows: List[MetricsRow], grown: bool) -> List[str]:
  evals = [r for r in rows if r.eval_loss is not None]
  if not evals:
    return []
  last = evals[-1]
  return [f"## {'Base model (before growth)' if grown else 'Model'} in DIR/metrics.jsonl", "",
          f"Last eval at step {last.step}: eval loss {_fmt(last.eval_loss)} "
          f"({len(rows)} logged steps).", ""]


NO_SCRATCH = {
    "lag": "lag_experiment.scratch_baseline = True adds one",
    "gradual": "gradual_experiment.mode = 'scratch' trains one at the same FLOPs in a model dir "
               "of its own"}


def _answer_section(experiment_dir: str, lag: runs.LagRun, kind: str) -> tuple:
  """The run's answer, as summary.md gives it: the final model (the last stage's winner,
  continued) and its eval loss, and the scratch baseline's comparison if the run trained one."""
  last = lag.stages[-1]
  winner_dir = store.candidate_dir(lag.stage_dirs[last.stage], last.winner)
  final = runs.last_eval(store.metrics_path(winner_dir))
  where = os.path.relpath(winner_dir, experiment_dir)
  lines = ["## Answer", ""]
  if len(lag.stages) > 1:
    lines += [f"Stage winners: {' → '.join(s.winner for s in lag.stages)}.", ""]
  answer = {"winner": last.winner, "final_step": None, "final_eval_loss": None,
            "scratch_eval_loss": None}
  if final is None:
    lines += [f"Winner `{last.winner}` has no eval in {where}/metrics.jsonl yet: the run has "
              "not finished.", ""]
    return lines, answer
  scratch = runs.last_eval(store.metrics_path(store.scratch_dir(experiment_dir)))
  answer.update(final_step=final.step, final_eval_loss=final.eval_loss,
                scratch_eval_loss=None if scratch is None else scratch.eval_loss)
  lines += [f"Winner `{last.winner}` continued to step {final.step}: final eval loss "
            f"**{answer['final_eval_loss']:.4f}** ({where}).", ""]
  if scratch is None:
    lines += [f"No scratch baseline in this run ({NO_SCRATCH.get(kind, NO_SCRATCH['lag'])}), "
              "so it cannot say whether growing paid at equal compute.", ""]
  elif final.eval_batch_losses is not None and scratch.eval_batch_losses is not None:
    baseline = store.read_baseline(experiment_dir)
    lines += [summary_lib.scratch_comparison(
        final.eval_loss, final.eval_batch_losses, scratch.eval_loss, scratch.eval_batch_losses,
        scratch.step, baseline.seed_spread if baseline is not None else 0.0), ""]
  else:  # Records from before per-batch eval losses were logged: no paired error.
    lines += [f"Scratch baseline at equal training FLOPs ({scratch.step} steps): eval loss "
              f"{answer['scratch_eval_loss']:.4f} vs the winner's "
              f"{answer['final_eval_loss']:.4f} (no per-batch eval losses to pair).", ""]
  return lines, answer


# --- Entry points. ------------------------------------------------------------------------------

def build_report(experiment_dir: str, target_rho: float = 0.8, num_resamples: int = 1000,
                 seed: int = 0, confidence: float = 0.95, sustained: bool = True) -> dict:
  """Writes DIR/report/report.md and its PNGs; returns the headline numbers (with 'report', the
  markdown's path). Raises runs.ExperimentDirError for a missing or empty directory."""
  experiment = runs.read_experiment(experiment_dir)
  report_dir = store.report_dir(experiment_dir)
  os.makedirs(report_dir, exist_ok=True)
  lines = [f"# Report: {experiment_dir}", "", f"Kind: **{experiment.kind}**.", ""]
  if experiment.lag is not None:
    section, headline = _lag_section(experiment.lag, experiment.kind, report_dir)
  else:
    section, headline = _study_section(report_dir, experiment.study, target_rho, num_resamples,
                                       seed, confidence, sustained)
  lines += section + _base_section(experiment.base_metrics, experiment.lag is not None)
  if experiment.lag is not None:  # The report ends on what the run was for.
    answer_lines, headline["answer"] = _answer_section(experiment_dir, experiment.lag,
                                                             experiment.kind)
    lines += answer_lines
  path = os.path.join(report_dir, "report.md")
  atomic_file.write_text(path, "\n".join(lines).rstrip() + "\n")
  headline.update(report=path, experiment_dir=experiment_dir)
  return headline


def format_headline(headline: dict) -> str:
  """The headline as printable text (markdown tables)."""
  if headline["kind"] == "study":
    if not headline.get("rows"):
      return "study: no eval step shared by every candidate yet"
    lines = [f"study: {headline['num_candidates']} candidates, T = {headline['final_step']}"
             f"{'' if headline['finished'] else ' (partly finished)'}", ""]
    lines += headline_table(headline["rows"])
    lines += ["", f"smallest k with rho >= {headline['target_rho']:g}: "
              f"{_fmt(headline['smallest_k'])}; regret at init "
              f"{_fmt(headline['regret_at_init'], 4)}, at k {_fmt(headline['regret_at_k'], 4)}"]
  else:
    lines = _table(["stage", "rule", "k", "winner", "init-loss choice"],
                   [[str(s["stage"]), s["rule"], _fmt(s["probe_steps"]), _fmt(s["winner"]),
                     _fmt(s["init_choice"])] for s in headline["stages"]])
    answer = headline.get("answer") or {}
    if answer.get("final_eval_loss") is not None:
      lines += ["", f"final: {answer['winner']} at step {answer['final_step']}, eval loss "
                f"{answer['final_eval_loss']:.4f}" + (
                    f"; scratch at equal FLOPs {answer['scratch_eval_loss']:.4f}"
                    if answer.get("scratch_eval_loss") is not None else "")]
  return "\n".join(lines + ["", f"report: {headline['report']}"])
