r"""Writes docs/results.md from the committed run records under benchmarks/results/.

    python benchmarks/results_doc.py                  # rewrite docs/results.md
    python benchmarks/results_doc.py --out FILE       # write elsewhere (the test compares)

Every number is computed from the records the comparison suite and the correlation study
committed, through their analysis functions (benchmarks/speedup/, lag_tf/analysis/); the prose
says which way an interval points, never a number typed by hand. README's headline table is
`headline_table()`'s text. Nothing is trained: the suites' reports are rebuilt in a temporary
directory.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import json
import math
import os
import shutil
import sys
import tempfile
from typing import Dict, List, Tuple

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks.speedup.budget import base_method, schedule_of  # noqa: E402
from benchmarks.speedup.decision_costs import picks_table, spend_table  # noqa: E402
from benchmarks.speedup.records import RunRecord, read_records  # noqa: E402
from benchmarks.speedup.report import (PREREGISTERED_FIXED, PREREGISTERED_LAG,  # noqa: E402
                                       budget_trend_table, build_speedup_report, fmt_ci,
                                       frontier_table, headline_line, methods_table)
from benchmarks.speedup.runs import Scope  # noqa: E402
from lag_tf.analysis import report as study_report  # noqa: E402
from lag_tf.analysis import runs as study_runs  # noqa: E402
from lag_tf.analysis import summary as study_summary  # noqa: E402

OUT = os.path.join("docs", "results.md")
RESULTS = os.path.join("benchmarks", "results")
ADAPTIVE = ["gradual_stacking", "race_gradual", "init_loss_gradual", "lag_gradual"]
TREND_METHODS = ["scratch", "gradual_stacking", "race_gradual", "init_loss_gradual",
                 "lag_gradual"]
NOISY_CANDIDATE = "copy_top_noisy"
STUDY_STEPS = range(0, 55, 5)
STUDY_REWARMUP = 20


@dataclasses.dataclass(frozen=True)
class Suite:
  """One committed suite: its records, and the command that redraws its report from them."""

  name: str  # The suite's name (`python -m benchmarks.speedup --suite NAME`).
  kind: str
  seeds: int
  methods: str = ""  # --methods, if the suite ran a subset.

  @property
  def results(self) -> str:
    return os.path.join(RESULTS, f"speedup_{self.name}")

  @property
  def records_dir(self) -> str:
    return os.path.join(REPO, self.results, self.kind)

  def report_only_command(self) -> str:
    methods = f" --methods {self.methods}" if self.methods else ""
    return (f"python -m benchmarks.speedup --suite {self.name} --model_kind {self.kind} "
            f"--seeds {self.seeds}{methods} --out /tmp/{self.name}_{self.kind}_report "
            f"--results {self.results} --report_only")


DECODER = Suite("small", "decoder", 5)
LONG = Suite("small_long", "decoder", 2, ",".join(TREND_METHODS))
ENCODER = Suite("small", "encoder", 3)
NOISY = Suite("small_noisy_pool", "decoder", 2)
# The suites whose reports are committed (the noisy pool's variant ran without a frontier).
REPORTED = (DECODER, LONG, ENCODER)
STUDY = os.path.join(RESULTS, "correlation_study_decoder_small")


# --- What the numbers say, in words. ------------------------------------------------------------

def _reading(low: float, high: float, null: float, above: str, below: str, within: str) -> str:
  """Which side of `null` an interval lies on, in words."""
  if math.isnan(low):
    return "one seed: no interval"
  return above if low > null else below if high < null else within


def speedup_reading(low: float, high: float) -> str:
  """A speedup's interval against 1 (1: the method needs as many FLOPs as the frontier)."""
  return _reading(low, high, 1.0, "paid", "did not pay", "within noise of 1")


def difference_reading(low: float, high: float) -> str:
  """A paired loss difference (method - reference, nats) against 0."""
  return _reading(low, high, 0.0, "worse", "better", "within noise")


def _speedup_cell(value, parenthesized: bool = False) -> str:
  """`1.33x [1.24, 1.42]: paid`, or `... (paid)`; a bound is printed alone (`>2.00x, a
  bound: paid`): an interval on a bound would claim a precision it does not have."""
  text, low, high = value
  if text[:1] in (">", "≤"):
    number = float(text.lstrip("≤> "))
    reading = ("paid" if text[0] == ">" and number >= 1 else
               "did not pay" if text[0] == "≤" and number <= 1 else "undecided by the bound")
    cell = f"{text.replace(' ', '')}x, a bound"
  elif math.isnan(low) or math.isnan(high):  # One seed: no interval, so no reading either.
    return f"{text.replace(' ', '')}x (one seed: no interval)"
  else:
    reading = speedup_reading(low, high)
    cell = f"{text.replace(' ', '')}x [{low:.2f}, {high:.2f}]"
  return cell + (f" ({reading})" if parenthesized else f": {reading}")


def _difference_cell(value) -> str:
  mean, low, high = value
  return f"{fmt_ci(mean, low, high, signed=True)}: {difference_reading(low, high)}"


# --- Reading the records. -----------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def suite_summary(suite: Suite, scope: Scope = Scope()) -> Tuple[dict, dict, str]:
  """(headline, summary.json's dict, report.md's text) of a suite's report rebuilt from its
  committed records alone, in a temporary directory (once per suite and scope; not to be
  changed by the caller)."""
  with tempfile.TemporaryDirectory() as tmp:
    headline = build_speedup_report(tmp, results_dir=suite.records_dir, scope=scope)
    with open(os.path.join(tmp, "report", "summary.json")) as f:
      summary = json.load(f)
    with open(os.path.join(tmp, "report", "report.md")) as f:
      markdown = f.read()
  return headline, summary, markdown


def seeds_table(report_markdown: str) -> str:
  """The report's table over seeds without its wall-time column (the runs shared the CPU with
  other jobs, so wall times say nothing about the methods)."""
  table = report_markdown[report_markdown.index("| method | final eval loss"):].split("\n\n")[0]
  return "\n".join(" | ".join(line.split(" | ")[:-1]) + " |" for line in table.splitlines())


@dataclasses.dataclass(frozen=True)
class Setup:
  layers: int
  params: int
  budget_steps: int
  budget_tflops: float
  tokens_per_parameter: float
  peak_learning_rate: str
  seeds: List[int]


def suite_setup(records: List[RunRecord]) -> Setup:
  """The target, budget and training length of a suite, from its scratch runs and decisions."""
  scratch = [r for r in records if r.run.method == "scratch" and r.run.finished]
  plan = scratch[0].run.plan
  decision = next(r.decisions[-1] for r in records  # A growth run's last stage: the target.
                  if r.decisions and r.layers == scratch[0].layers)
  params = decision.candidates[decision.winner].params
  tokens = plan.phases[-1].steps * decision.tokens_per_step
  peak = next(b.split(" = ")[1] for b in scratch[0].run.bindings
              if b.startswith("WarmupDecaySchedule.peak_learning_rate"))
  return Setup(layers=scratch[0].layers, params=params, budget_steps=plan.phases[-1].steps,
               budget_tflops=plan.budget_flops / 1e12, tokens_per_parameter=tokens / params,
               peak_learning_rate=peak, seeds=sorted(int(r.run.seed) for r in scratch))


def best_depth_at_budget(records: List[RunRecord]) -> Dict[int, int]:
  """{seed: the depth whose scratch run at the full budget ends lowest}."""
  budget = {int(r.run.seed): r.run.plan.budget_flops for r in records
            if r.run.method == "scratch" and r.run.finished}
  best: Dict[int, Tuple[float, int]] = {}
  for record in records:
    run, seed = record.run, int(record.run.seed)
    if not run.finished or not (run.method == "scratch" or run.method.startswith("frontier_")):
      continue
    if seed not in budget or abs(record.total_flops / budget[seed] - 1) > 0.01:
      continue
    best[seed] = min(best.get(seed, (math.inf, 0)), (record.final_loss, record.layers))
  return {seed: depth for seed, (_, depth) in sorted(best.items())}


def _depths_sentence(best: Dict[int, int]) -> str:
  counts = collections.Counter(best.values())
  parts = [f"{d} layer{'s' if d > 1 else ''} in {n} of {len(best)} seeds"
           for d, n in sorted(counts.items())]
  return "; ".join(parts)


def rule_agreement(records: List[RunRecord], rules) -> Tuple[str, int, int]:
  """(the candidate the adaptive rules committed most, how often, of how many decisions)."""
  winners = [w for r in records if r.run.finished and r.run.method in rules for w in r.winners]
  name, count = collections.Counter(winners).most_common(1)[0]
  return name, count, len(winners)


def _setup_sentence(setup: Setup, kind: str) -> str:
  return (f"Target: a {setup.layers}-layer {kind} of {setup.params:,} parameters; budget "
          f"{setup.budget_steps} target steps = {setup.budget_tflops:.2f} TFLOPs per run, about "
          f"{setup.tokens_per_parameter:.1f} training tokens per parameter; peak learning rate "
          f"{setup.peak_learning_rate}; seeds {', '.join(map(str, setup.seeds))}.")


def _headline_block(headline: dict) -> List[str]:
  return ["The pre-registered line (the suite's last line):", "",
          "    " + headline_line(headline), ""]


def _verdict_lines(headline: dict) -> List[str]:
  fixed = PREREGISTERED_FIXED
  lines = [f"- Fixed size: `{fixed}` {_speedup_cell(headline['fixed_size_speedup'])}.",
           f"- Any size: `{fixed}` {_speedup_cell(headline['frontier_speedup'])}."]
  for method in PREREGISTERED_LAG:
    key = f"{method}_vs_fixed"
    if key in headline:
      lines.append(f"- `{method}` against `{fixed}`, final eval loss (nats; positive: "
                   f"worse): {_difference_cell(headline[key])}.")
  return lines


# --- The document. ------------------------------------------------------------------------------

HOW_TO_READ = """\
## How to read these tables

- **Equal compute, every FLOP charged.** Each method trains the same target model on the same
  data, tokenizer, batch, optimizer and seeds, within the FLOP budget of training the target
  from scratch. A method is charged every candidate's probe and every evaluation its decisions
  read (a forward pass, a third of a training step's count); periodic logging evaluations are
  charged to no method.
- **Two questions.** *Fixed size* (the growth literature's): the FLOPs scratch training of
  the target depth needs to reach the method's final loss, over the FLOPs at which the method
  reached it. *Any size* (the sceptic's): the same against scratch training of every depth.
  Above 1: growth saved compute.
- **The frontier is an envelope.** Scratch's FLOPs for a loss are read from the lower envelope
  of every evaluation of every scratch run (every budget; a longer run's evaluations before its
  end count too), interpolated in log FLOPs between the envelope's points: monotone, and a
  scratch run on it reads exactly 1.00. The suite's own `scratch` run (one budget, one
  schedule) can lie above it: its fixed-size figure below 1.00 measures how far.
- **Bounds are bounds.** `>` and `≤` mark a loss outside the frontier's measured range: the
  value is a bound, never an extrapolation, printed without an interval.
- **Intervals.** Final losses: means over seeds with 95% Student-t intervals; speedups:
  geometric means with t-intervals on their logs; differences between methods are paired over
  seeds. An interval that holds 1 (a speedup) or 0 (a difference) is read as *within noise*.
- **Pre-registered.** The comparisons fixed before the runs are `{fixed}` against both
  frontiers and {lag} against `{fixed}`. The largest single-run ratio ("best of many") is
  chosen after the runs and marked so; everything else is exploratory.
"""


def headline_table() -> str:
  """README's table: the pre-registered comparisons of each committed suite, in words too."""
  lines = [f"| suite | seeds | `{PREREGISTERED_FIXED}`, fixed size | "
           f"`{PREREGISTERED_FIXED}`, any size | "
           + " | ".join(f"`{m}` - `{PREREGISTERED_FIXED}` (nats)" for m in PREREGISTERED_LAG)
           + " |", "| --- | ---: | --- | --- |" + " --- |" * len(PREREGISTERED_LAG)]
  for suite in REPORTED:
    headline = suite_summary(suite)[0]
    setup = suite_setup(read_records(suite.records_dir))
    label = (f"{suite.kind}, {setup.budget_steps}-step budget "
             f"({setup.tokens_per_parameter:.1f} tokens/parameter)")
    cells = [_difference_cell(headline[f"{m}_vs_fixed"]) for m in PREREGISTERED_LAG]
    lines.append(f"| {label} | {len(headline['seeds'])} | "
                 f"{_speedup_cell(headline['fixed_size_speedup'])} | "
                 f"{_speedup_cell(headline['frontier_speedup'])} | " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _plot(suite: Suite, name: str, caption: str) -> str:
  return f"![{caption}](../{suite.results}/{suite.kind}/{name})"


def _frontier_block(suite: Suite, records: List[RunRecord]) -> List[str]:
  """Seed 0's scratch frontier, which depth ends lowest at the budget, and the plot."""
  return ["### The scratch frontier, seed 0", "",
          "Final eval loss of each depth trained from scratch and fully annealed, at shares of "
          "the budget (`-`: not in the grid).", "",
          frontier_table(records, seed=0), "",
          f"The depth that ends lowest at the full budget: "
          f"{_depths_sentence(best_depth_at_budget(records))}.", "",
          _plot(suite, "frontier.png", "The scratch frontier and every method's final point"),
          ""]


def suite_section(suite: Suite, title: str, model: str, note: str = "",
                  seed_zero: bool = False) -> List[str]:
  """A suite's frontier, its methods over all seeds (and on seed 0 alone), its pre-registered
  line, what each rule committed, the readings, the plots and the command that redraws them."""
  records = read_records(suite.records_dir)
  headline, _, markdown = suite_summary(suite)
  name, count, total = rule_agreement(records, ADAPTIVE[1:])
  seed_zero_lines = [
      "### Every method, seed 0", "",
      "FLOPs / budget: what the run spent, every probe and decision evaluation charged; "
      "deciding: the losers' probes and every evaluation the decisions read, as a share of the "
      "budget.", "",
      methods_table(records, seed=0), ""] if seed_zero else []
  return [
      f"## {title}", "",
      _setup_sentence(suite_setup(records), model) + note, "",
      *_frontier_block(suite, records),
      *seed_zero_lines,
      "### Every method, all seeds", "",
      seeds_table(markdown), "",
      *_headline_block(headline),
      "What each adaptive rule committed, stage by stage, and its final eval loss:", "",
      picks_table(records, ADAPTIVE), "",
      "### What it says", "",
      *_verdict_lines(headline),
      f"- The adaptive rules ({', '.join(f'`{m}`' for m in ADAPTIVE[1:])}) committed "
      f"`{name}` in {count} of their {total} stage decisions.", "",
      _plot(suite, "loss_vs_flops.png", "Eval loss against training FLOPs"), "",
      "Redraw the report and both plots from the records alone:", "",
      "    " + suite.report_only_command(), ""]


def trend_section() -> List[str]:
  long_records = read_records(LONG.records_dir)
  small_setup = suite_setup(read_records(DECODER.records_dir))
  long_setup = suite_setup(long_records)
  factor = long_setup.budget_tflops / small_setup.budget_tflops
  long_headline, long_summary, _ = suite_summary(LONG)
  seeds = tuple(long_setup.seeds)
  small_summary = suite_summary(DECODER)[1]
  small_same_seeds = suite_summary(DECODER, Scope(seeds=seeds))[1]
  labels = [(f"1x: {small_setup.budget_steps} steps, {small_setup.tokens_per_parameter:.1f} "
             "tokens/parameter", small_summary),
            (f"1x, seeds {', '.join(map(str, seeds))}", small_same_seeds),
            (f"{factor:.0f}x: {long_setup.budget_steps} steps, "
             f"{long_setup.tokens_per_parameter:.1f} tokens/parameter", long_summary)]
  fixed = PREREGISTERED_FIXED
  before = small_same_seeds["methods"][fixed]
  after = long_summary["methods"][fixed]
  return [
      f"## The trend with budget: the decoder suite at {factor:.0f}x the budget", "",
      _setup_sentence(long_setup, "decoder (causal LM)") + " Each stage is "
      f"{factor:.0f}x as long; methods: {', '.join(f'`{m}`' for m in TREND_METHODS)}.", "",
      *_frontier_block(LONG, long_records),
      "### Both budgets side by side", "",
      "The small suite over all its seeds and over the seeds the long one has, so that each "
      "comparison is on the same seeds (with two seeds a t-interval has one degree of "
      "freedom, hence wide).", "",
      budget_trend_table(labels, TREND_METHODS), "",
      *_headline_block(long_headline),
      "### What it says", "",
      *_verdict_lines(long_headline),
      f"- On the same seeds, `{fixed}`'s fixed-size speedup goes from "
      f"{_speedup_cell(before['fixed_size_ci'], True)} to "
      f"{_speedup_cell(after['fixed_size_ci'], True)}, and its any-size speedup from "
      f"{_speedup_cell(before['any_size_ci'], True)} to "
      f"{_speedup_cell(after['any_size_ci'], True)}.", "",
      "Redraw the report and both plots from the records alone:", "",
      "    " + LONG.report_only_command(), ""]


TUNING = os.path.join(RESULTS, "scratch_tuning")
METHOD_TUNING = os.path.join(RESULTS, "method_tuning")  # Growth methods', the same grid.
TUNING_SEEDS = (0, 1)


def tuning_choice(records: List[RunRecord], label=None
                  ) -> Tuple[List[Tuple[str, List[float]]], str]:
  """([(schedule, final eval loss per tuning seed)] best first, the chosen schedule): the rule
  fixed before seeds 2-4 ran is the lowest mean final loss at the 1x budget over TUNING_SEEDS.
  label: a record's schedule name (default: the one its method is named with)."""
  label = label or (lambda record: schedule_of(record.run.method))
  by_schedule: Dict[str, Dict[int, float]] = collections.defaultdict(dict)
  for record in records:
    if record.run.finished and record.run.seed in TUNING_SEEDS:
      by_schedule[label(record)][record.run.seed] = record.final_loss
  rows = [(name, [losses[s] for s in TUNING_SEEDS]) for name, losses in by_schedule.items()
          if set(losses) == set(TUNING_SEEDS)]
  rows.sort(key=lambda row: sum(row[1]) / len(row[1]))
  return rows, rows[0][0]


def tuning_table(rows: List[Tuple[str, List[float]]], chosen: str) -> List[str]:
  """Markdown rows: each schedule's final loss per tuning seed and their mean, best first."""
  lines = ["| schedule | " + " | ".join(f"seed {s}" for s in TUNING_SEEDS) + " | mean |",
           "| --- |" + " ---: |" * (len(TUNING_SEEDS) + 1)]
  for name, losses in rows:
    mark = " (chosen)" if name == chosen else ""
    lines.append(f"| `{name}`{mark} | " + " | ".join(f"{v:.3f}" for v in losses)
                 + f" | {sum(losses) / len(losses):.3f} |")
  return lines


def tuning_section() -> List[str]:
  """The scratch tuning grid: every schedule at the 1x budget on the tuning seeds, the one
  chosen, and where the suites' frontiers use it."""
  rows, chosen = tuning_choice(read_records(os.path.join(REPO, TUNING, "decoder")))
  setup = suite_setup(read_records(DECODER.records_dir))
  lines = [
      "## Tuning scratch: the decoder's learning-rate schedule", "",
      f"The 4-layer decoder from scratch at the 1x budget ({setup.budget_steps} steps), one run "
      "per schedule `<shape>_<peak>` (`lin0`: linear decay to 0, `lin10`: to 10% of the peak, "
      "`wsd`: warmup-stable-decay, the peak until the last 20% of the steps, then linear to 0) "
      f"and tuning seed ({', '.join(map(str, TUNING_SEEDS))}). Chosen by a rule fixed before "
      "the other seeds ran: the lowest mean final eval loss over the tuning seeds. The chosen "
      "schedule then runs at every budget of the frontier for every seed, and the two next "
      "best at 1x and 1.5x (the suite's `SpeedupSuite.scratch_schedules`), so the target-size "
      "scratch runs of every seed span four settings; the frontier is the envelope of those "
      "runs and the suite's own. " + (
          "The suite's growth methods run with the shared schedule (\"same defaults\"); the "
          f"next section gives `{PREREGISTERED_FIXED}` the same tuning (\"each tuned\")."
          if os.path.isdir(os.path.join(REPO, METHOD_TUNING)) else
          "The growth methods still run with the shared schedule: they have not had the same "
          "tuning yet, so against a tuned frontier they read as \"same defaults\", not "
          "\"each tuned\"."), "",
      *tuning_table(rows, chosen)]
  held_out = tuple(s for s in suite_setup(read_records(DECODER.records_dir)).seeds
                   if s not in TUNING_SEEDS)
  fixed = suite_summary(DECODER, Scope(seeds=held_out))[1]["methods"][PREREGISTERED_FIXED]
  return lines + [
      "", f"On the seeds not used for tuning ({', '.join(map(str, held_out))}) alone, "
      f"`{PREREGISTERED_FIXED}`'s fixed-size speedup against this frontier is "
      f"{_speedup_cell(fixed['fixed_size_ci'], True)}.", ""]


def encoder_tuning_section() -> List[str]:
  """The encoder's scratch tuning grid, by the decoder's rule, once its records exist, and
  whether the encoder suite's frontier runs the chosen schedule on every seed."""
  directory = os.path.join(REPO, TUNING, "encoder")
  if not os.path.isdir(directory):
    return []
  rows, chosen = tuning_choice(read_records(directory))
  suite_seeds = suite_setup(read_records(ENCODER.records_dir)).seeds
  ran = {r.run.seed for r in read_records(ENCODER.records_dir)
         if r.run.finished and schedule_of(r.run.method) == chosen}
  in_suite = (
      "The chosen schedule then runs at every budget of the encoder suite's frontier for every "
      "seed, and the two next best at 1x and 1.5x, as the decoder's do, so the frontier above is "
      "the envelope of four target-size settings." if set(suite_seeds) <= ran else
      "The encoder suite's frontier does not run the chosen schedule on every seed yet, so its "
      "speedups above are read against untuned scratch.")
  lines = [
      "## Tuning scratch: the encoder's learning-rate schedule", "",
      "The 4-layer encoder from scratch at the 1x budget, the same grid, seeds and rule as the "
      "decoder's, extended down to peaks 5e-4 and then 2.5e-4 because the best schedule sat at "
      "the grid's lowest peak (1e-3, then 5e-4); the chosen peak now has a lower and a higher "
      "one beside it. The suite's shared schedule is `lin0_1e-3`, and the grid's `lin0_1e-3` "
      "run is that run again. " + in_suite, "",
      *tuning_table(rows, chosen)]
  peaks = sorted({float(name.rsplit("_", 1)[1]) for name, _ in rows})
  if float(chosen.rsplit("_", 1)[1]) == peaks[0]:
    lines += ["", "The chosen peak is the grid's lowest, so the grid does not bracket the best "
              "one yet: a lower peak comes before the suite runs the choice (as the decoder's "
              "grid gained 1e-3 when seed 0 put its best at the edge)."]
  held_out = tuple(s for s in suite_seeds if s not in TUNING_SEEDS)
  if set(suite_seeds) <= ran and held_out:
    fixed = suite_summary(ENCODER, Scope(seeds=held_out))[1]["methods"][PREREGISTERED_FIXED]
    lines += ["", f"On the seed{'s' if len(held_out) > 1 else ''} not used for tuning "
              f"({', '.join(map(str, held_out))}) alone, `{PREREGISTERED_FIXED}`'s fixed-size "
              f"speedup against this frontier is {_speedup_cell(fixed['fixed_size_ci'], True)}."]
  return lines + [""]


def shared_schedule(record: RunRecord) -> str:
  """The shared schedule a suite method ran under, `lin0_<peak>` (its bindings' peak; the
  shared shape is WarmupDecaySchedule's and ProbeSchedule's default, linear to 0)."""
  prefix = "WarmupDecaySchedule.peak_learning_rate = "
  peaks = [b[len(prefix):] for b in record.run.bindings if b.startswith(prefix)]
  if not peaks:
    return "shared"
  mantissa, exponent = f"{float(peaks[-1]):.3e}".split("e")  # 0.002 -> 2e-3, as grid names.
  return f"lin0_{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def method_tuning_section() -> List[str]:
  """The preregistered growth method tuned as scratch was (the same grid, seeds and rule; its
  shared-schedule runs are the grid's `lin0` cell at the shared peak), and its fixed-size
  speedup "same defaults" beside "each tuned" once the chosen schedule ran on every seed."""
  directory = os.path.join(REPO, METHOD_TUNING, DECODER.kind)
  if not os.path.isdir(directory):
    return []
  shared = [r for r in read_records(DECODER.records_dir) if r.run.method == PREREGISTERED_FIXED]
  tuned = [r for r in read_records(directory) if base_method(r.run.method) == PREREGISTERED_FIXED]
  rows, chosen = tuning_choice(
      tuned + shared, lambda r: schedule_of(r.run.method) or shared_schedule(r))
  lines = [
      f"## Tuning a growth method: `{PREREGISTERED_FIXED}`'s schedule", "",
      f"`{PREREGISTERED_FIXED}` on the decoder under the scratch grid's schedules (every stage's "
      "schedule of that shape and peak: the first stage's and each one after growth; "
      "`SpeedupSuite.method_schedules`), at its budget, on the tuning seeds, chosen by the same "
      "rule. Its runs under the suite's shared schedule are the grid's "
      f"`{shared_schedule(shared[0])}` cell. Records: `{METHOD_TUNING}/{DECODER.kind}/runs`.", "",
      *tuning_table(rows, chosen)]
  _, summary, _ = suite_summary(DECODER)
  variant = f"{PREREGISTERED_FIXED}_{chosen}"
  if variant not in summary["methods"]:
    return lines + ["", f"`{variant}` has not run on the other seeds yet, so the suite's "
                    "tables still read the growth methods under \"same defaults\".", ""]
  held_out = tuple(s for s in summary["methods"][variant]["seeds"] if s not in TUNING_SEEDS)
  held = suite_summary(DECODER, Scope(seeds=held_out))[1]["methods"]
  cells = [(name, summary["methods"][m]["fixed_size_ci"], held[m]["fixed_size_ci"])
           for name, m in (("same defaults", PREREGISTERED_FIXED), ("each tuned", variant))]
  return lines + [
      "", "Fixed-size speedup against the tuned scratch envelope, the shared schedule (\"same "
      f"defaults\") beside the chosen one (\"each tuned\", `{variant}`), on every seed and on "
      f"the seeds not used for tuning ({', '.join(map(str, held_out))}):", "",
      "| schedule | every seed | held-out seeds |", "| --- | ---: | ---: |",
      *[f"| {name} | {_speedup_cell(every, True)} | {_speedup_cell(held_ci, True)} |"
        for name, every, held_ci in cells], ""]


def noisy_section() -> List[str]:
  records = read_records(NOISY.records_dir)
  picked = sum(w == NOISY_CANDIDATE for r in records for w in r.winners)
  offered = sum(NOISY_CANDIDATE in d.candidates for r in records for d in r.decisions)
  return [
      "## A pool where the choice matters", "",
      f"The decoder small suite with a clearly bad candidate in every adaptive stage pool: "
      f"`{NOISY_CANDIDATE}`, the top block's copy with noise of three times each copied "
      f"kernel's standard deviation (`gin/experiments/speedup_small_noisy_pool.gin`, no "
      f"frontier). What each rule paid for it:", "",
      spend_table(records, NOISY_CANDIDATE), "",
      picks_table(records, ADAPTIVE), "",
      f"- `{NOISY_CANDIDATE}` was offered in {offered} stage decisions and committed in "
      f"{picked}.",
      "- A rule that cannot tell a bad candidate early pays for it in full: fixed-k LAG trains "
      "it for k steps at every stage, a race drops it at a look, `init_loss` reads it at "
      "growth.", ""]


def study_section() -> List[str]:
  with tempfile.TemporaryDirectory() as tmp:
    copy = os.path.join(tmp, "study")
    shutil.copytree(os.path.join(REPO, STUDY), copy)
    headline = study_report.build_report(copy)
    study = study_summary.summarize_study(
        study_runs.study_table(study_runs.read_experiment(copy).study))
  finals = sorted(zip(study.final_losses, study.table.names))
  init = headline["rows"][0]
  return [
      "## Correlation study: does the loss after k probe steps predict the final loss?", "",
      f"The decoder suite's one-shot setting (`gin/experiments/"
      f"correlation_study_decoder_small.gin`): its 2-layer base grows to 4 layers with each of "
      f"{headline['num_candidates']} candidates, and every candidate trains the full "
      f"T = {headline['final_step']} steps after growth, {len(study.table.seeds)} seeds. "
      "Every candidate's metrics are committed under "
      f"`{STUDY}/`.", "",
      "\n".join(study_report.headline_table(headline["rows"])), "",
      "Final eval loss at T, mean over seeds: "
      + ", ".join(f"`{name}` {loss:.3f}" for loss, name in finals) + ".", "",
      "Rank correlation by probe step, inside the post-growth learning-rate rewarmup and after "
      "it:", "",
      "\n".join(study_report.step_table(study, STUDY_STEPS, rewarmup_steps=STUDY_REWARMUP)), "",
      f"- At growth (probe step {init['step']}) Spearman's rho with the final ranking is "
      f"{init['spearman']:.3f} [{init['spearman_low']:.3f}, {init['spearman_high']:.3f}] and "
      f"the choice there is `{init['chosen']}`; the best final candidate is "
      f"`{study.best_final}`.",
      "- One pool, one growth point: it says where the decision was open in this setting, not "
      "in every setting; run a study of your own before trusting a short probe.", "",
      f"![rank correlation against probe step](../{STUDY}/report/correlation.png)", "",
      "Rerun it, then its report:", "",
      "    python -m lag_tf.main --gin_file=gin/experiments/correlation_study_decoder_small.gin "
      "--model_dir=/tmp/study_decoder",
      "    python -m lag_tf.analyze --experiment_dir=/tmp/study_decoder", ""]


def document() -> str:
  lines = [
      "# Results", "",
      "<!-- Generated by `python benchmarks/results_doc.py` from the committed records under "
      "benchmarks/results/; edit the script, not this file. -->", "",
      "Every number below is computed from the run records committed under "
      "`benchmarks/results/` (each run's charged eval curve, plan and decision records), "
      "by `python benchmarks/results_doc.py`; a test regenerates this page and fails on any "
      "difference. How the runs were made: [usage](usage.md#the-comparison-suite).", "",
      "## In one table", "",
      headline_table(), "",
      HOW_TO_READ.format(fixed=PREREGISTERED_FIXED,
                         lag=", ".join(f"`{m}`" for m in PREREGISTERED_LAG)),
      *suite_section(DECODER, "Decoder, small suite", "decoder (causal LM)", seed_zero=True),
      *tuning_section(), *method_tuning_section(), *trend_section(), *noisy_section(),
      *suite_section(ENCODER, "Encoder, small suite", "encoder (masked LM, 15% masking)",
                     " The masked LM leaves its plateau at a seed-dependent time, so its "
                     "intervals are wide."),
      *encoder_tuning_section(), *study_section()]
  return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", default=os.path.join(REPO, OUT),
                      help="where to write the document (default: docs/results.md)")
  args = parser.parse_args(argv)
  text = document()
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "w", encoding="utf-8") as f:
    f.write(text)
  print(f"wrote {args.out}: {len(text.splitlines())} lines")
  return 0


if __name__ == "__main__":
  sys.exit(main())
