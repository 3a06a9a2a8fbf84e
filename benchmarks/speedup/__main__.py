r"""Does growing reach a scratch model's loss for less compute? The comparison suite's command,
run from the repository's root:

  python -m benchmarks.speedup --suite small --model_kind encoder --seeds 3 --out /tmp/speedup
  python -m benchmarks.speedup --suite accelerator --model_kind decoder --print_cost \
      --gin_bindings="DATA_DIR='gs://my-bucket/tensorflow_datasets'"

For one target model, on the same data, tokenizer, batch and optimizer, every method of
`budget.METHODS` (scratch; gradual stacking, MIDAS and one-shot stacking; adaptive gradual
stacking with rule `lag`, `race` and `init_loss`; one-shot LAG over a pool) runs once per seed
under the same FLOP budget, every probe and every evaluation a decision reads charged (budget.py
plans the steps), and so does the scratch frontier (SpeedupSuite.frontier: each depth from
scratch, fully annealed, at several budgets; <out>/<kind>/frontier/ or --frontier_dir).
Each run is one `python -m lag_tf.main` process with the suite's gin file plus the method's
bindings, in <out>/<model_kind>/<method>/seed-<s>/ (a normal lag_tf model dir: rerunning the
suite resumes unfinished runs and skips finished ones). Then the report
(<out>/<model_kind>/report/report.md, loss_vs_flops.png, frontier.png) is written, and the last
line holds the comparisons fixed before the runs:

  speedup: method=gradual_stacking frontier_speedup=<x> ci=[..] fixed_size_speedup=<y> ci=[..]
    race_gradual_vs_fixed=<d> ci=[..] lag_gradual_vs_fixed=<d> ci=[..] best_of_many=...

Suites are gin files: gin/experiments/speedup_{smoke,small,accelerator}.gin (or a path).
Exit codes: 0 done; 1 a run failed (its log is named); 2 bad arguments or suite config.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util  # noqa: F401  gin reads files through importlib.util.
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gin  # noqa: E402

from benchmarks.speedup import budget, records  # noqa: E402
from benchmarks.speedup.records import PlanRecord, RunInfo  # noqa: E402
from benchmarks.speedup.report import build_speedup_report, headline_line  # noqa: E402
from benchmarks.speedup.runs import Scope, export_results  # noqa: E402
from lag_tf import config_io  # noqa: E402
from lag_tf import configurables  # noqa: E402,F401  Registers every configurable.
from lag_tf.lag.gradual import StagePoolTemplate  # noqa: E402
from lag_tf.models import TransformerConfig, count_parameters  # noqa: E402

SUITES = {name: f"gin/experiments/speedup_{name}.gin"
          for name in ("smoke", "small", "small_noisy_pool", "small_long", "accelerator")}
KINDS = ("encoder", "decoder")


class SuiteError(ValueError):
  """Bad arguments or suite configuration (exit 2)."""


def suite_file(suite: str) -> str:
  path = SUITES.get(suite, suite)
  full = path if os.path.isabs(path) else os.path.join(REPO, path)
  if not os.path.isfile(full):
    raise SuiteError(f"--suite={suite!r}: expected one of {sorted(SUITES)} or a gin file")
  return full


def load_suite(gin_file: str, kind: str, extra_bindings):
  """Parses the suite's gin file in this process (it never trains here) and plans it."""
  bindings = [f"TransformerConfig.kind = '{kind}'"] + list(extra_bindings)
  try:
    config_io.parse([gin_file], bindings)
    suite = budget.SpeedupSuite()
    target = TransformerConfig().replace(num_layers=suite.target_layers)
    batch = gin.query_parameter("Trainer.global_batch_size")
    try:
      mask = gin.query_parameter("LanguageModelingData.mlm_probability")
    except ValueError:
      mask = 0.15  # LanguageModelingData's default.
    eval_batches = gin.query_parameter("Trainer.eval_batches")
    plans = budget.plans(suite, target, batch, mask, StagePoolTemplate(), eval_batches)
    frontier = budget.frontier_plans(suite, target, batch, mask)
  except (config_io.ConfigError, ValueError) as error:
    raise SuiteError(config_io.one_line(str(error))) from None
  return suite, target, bindings, plans, frontier


def print_plan(suite, target, plans, frontier, seeds, sustained_tflops: float) -> float:
  budget_flops = next(iter(plans.values())).budget_flops
  print(f"suite {suite.name}: target {target.kind}, {target.num_layers} layers x d_model "
        f"{target.d_model}, {count_parameters(target):,} parameters; budget "
        f"{suite.budget_steps} target steps = {budget_flops / 1e12:.2f} TFLOPs per run; "
        f"seeds {list(seeds)}; peak learning rate "
        f"{suite.peak_learning_rates.get(target.kind, 'from the gin file')}")
  print("| method | stages (layers x steps) | probe k | probe overhead | total TFLOPs |")
  print("| --- | --- | ---: | ---: | ---: |")
  for method, plan in plans.items():
    stages = " -> ".join(f"{p.layers}x{p.steps}" for p in plan.phases)
    print(f"| {method} | {stages} | {plan.probe_steps} | "
          f"{plan.overhead_flops / plan.budget_flops:.1%} | {plan.total_flops / 1e12:.2f} |")
  if frontier:
    print(f"scratch frontier: {len(frontier)} runs per seed besides `scratch` (depth x steps, "
          "budget share): " + ", ".join(
              f"{p.phases[0].layers}x{p.phases[0].steps} ({p.total_flops / budget_flops:.2f})"
              for p in frontier))
  methods_total = sum(p.total_flops for p in plans.values()) * len(seeds)
  frontier_total = sum(p.total_flops for p in frontier) * len(seeds)
  total = methods_total + frontier_total
  print(f"suite total: {total / 1e15:.3f} PFLOPs ({len(plans)} methods x {len(seeds)} seeds: "
        f"{methods_total / 1e15:.3f}; frontier: {frontier_total / 1e15:.3f}); "
        f"at {sustained_tflops:g} sustained TFLOP/s: {total / (sustained_tflops * 1e12) / 3600:.2f}"
        " hours of training (evaluation and compilation not included)")
  return total


def committed_records(results: str, kind: str) -> dict:
  """{(method, seed): the suite's record of the run} of the runs finished in --results."""
  if not results:
    return {}
  return {(r.run.method, r.run.seed): r.run
          for r in records.read_records(os.path.join(results, kind)) if r.run.finished}


def choose_seeds(suite_seeds, count):
  """The suite's seeds, or the first `count` of them extended by the next integers."""
  seeds = list(suite_seeds)
  if count is None:
    return seeds
  while len(seeds) < count:
    seeds.append(max(seeds) + 1)
  return seeds[:count]


def launch_main(argv, log) -> int:
  """Runs `python -m lag_tf.main ARGV` in a child process, its output appended to `log`; its
  exit code."""
  return subprocess.call([sys.executable, "-m", "lag_tf.main"] + list(argv), cwd=REPO,
                         stdout=log, stderr=subprocess.STDOUT)


def run_one(gin_file: str, bindings, plan, seed: int, method_dir: str, kind: str,
            peak_learning_rate, suite, launch=launch_main) -> float:
  """Runs (or resumes) one method/seed in `method_dir` through `launch` (a child process by
  default); returns its wall seconds this attempt."""
  model_dir = records.run_dir(method_dir, seed)
  info = records.read_info(model_dir)
  method_bindings = budget.method_bindings(plan, seed, peak_learning_rate, suite)
  if info is not None and info.bindings != list(bindings) + method_bindings:
    # Never mix settings in one report, never touch the earlier run: a new --out is needed.
    raise SuiteError(f"{model_dir} was run with other settings "
                     f"({records.info_path(model_dir)}); use another --out for a changed "
                     "suite")
  if info is not None and info.finished:
    return 0.0
  info = RunInfo(method=plan.method, seed=seed, kind=kind,
                 experiment=budget.experiment_of(plan.method),
                 plan=PlanRecord.from_json(plan.to_dict()),
                 bindings=list(bindings) + method_bindings, finished=False,
                 wall_seconds=info.wall_seconds if info is not None else None)
  records.write_info(model_dir, info)
  argv = ([f"--gin_file={gin_file}", f"--model_dir={model_dir}"]
          + [f"--gin_bindings={b}" for b in list(bindings) + method_bindings])
  log_path = records.log_path(model_dir)
  started = time.time()
  with open(log_path, "a") as log:
    code = launch(argv, log)
  seconds = time.time() - started
  records.write_info(model_dir, dataclasses.replace(
      info, wall_seconds=(info.wall_seconds or 0.0) + seconds, finished=code == 0))
  if code != 0:
    raise RuntimeError(f"{plan.method} seed {seed} exited {code}; see {log_path}")
  return seconds


def main(argv=None, launch=launch_main) -> int:
  """The suite binary; `launch(argv, log) -> exit code` runs one `lag_tf.main` (tests run it in
  their own process, where TensorFlow is already imported)."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--suite", default="small", help=f"{sorted(SUITES)} or a gin file")
  parser.add_argument("--model_kind", default="encoder", choices=KINDS + ("both",))
  parser.add_argument("--seeds", type=int, default=None,
                      help="number of seeds (default: the suite's SpeedupSuite.seeds)")
  parser.add_argument("--out", default="/tmp/lag_tf_speedup")
  parser.add_argument("--methods", default=None,
                      help=f"comma-separated subset of {','.join(budget.METHODS)}")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="extra bindings for every run (e.g. DATA_DIR='...')")
  parser.add_argument("--frontier", default="all", choices=("all", "none", "only"),
                      help="run the scratch frontier too (all), skip it (none), or run only the "
                           "frontier and `scratch` (only: no growth method)")
  parser.add_argument("--frontier_dir", default=None,
                      help="where frontier runs live (default <out>/<kind>/frontier); suites "
                           "whose grids meet can share one")
  parser.add_argument("--results", default=None,
                      help="committed run records: DIR/<kind>/runs/<method>/seed-<s>.json. A run "
                           "finished there with the same bindings is not run again and counts "
                           "in the report; after the report every run's compact record (charged "
                           "eval curve, decisions, plan) is written there, to commit "
                           "(docs/results.md is generated from them: benchmarks/results_doc.py)")
  parser.add_argument("--print_cost", action="store_true",
                      help="print the plan and its cost, run nothing")
  parser.add_argument("--report_only", action="store_true",
                      help="write the report from the runs already in --out")
  parser.add_argument("--sustained_tflops", type=float, default=None,
                      help="throughput for the time estimate (default: the suite's "
                           "SpeedupSuite.sustained_tflops)")
  args = parser.parse_args(argv)
  kinds = KINDS if args.model_kind == "both" else (args.model_kind,)
  try:
    gin_file = suite_file(args.suite)
    if args.seeds is not None and args.seeds < 1:
      raise SuiteError(f"--seeds={args.seeds}: expected >= 1")
    headlines = []
    for kind in kinds:
      suite, target, bindings, plans, frontier = load_suite(gin_file, kind,
                                                            list(args.gin_bindings))
      if args.methods:
        # Chosen here, not by a gin binding: a run's bindings (its identity in --out and
        # --results) must not depend on which other methods this invocation runs.
        chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = sorted(set(chosen) - set(plans))
        if unknown:
          raise SuiteError(f"--methods: {', '.join(unknown)} not in this suite's methods "
                           f"({', '.join(plans)})")
        plans = {m: p for m, p in plans.items() if m in chosen}
      seeds = choose_seeds(suite.seeds, args.seeds)
      # The report and the export read only this suite's seeds and frontier grid, even when
      # --frontier_dir holds another suite's budgets and seeds too (or --frontier none runs
      # none of the grid now).
      scope = Scope(frontier_grid=tuple(plan.method for plan in frontier), seeds=tuple(seeds))
      if args.frontier == "none":
        frontier = []
      elif args.frontier == "only":
        plans = {m: p for m, p in plans.items() if m == "scratch"}
      print_plan(suite, target, plans, frontier, seeds,
                 args.sustained_tflops or suite.sustained_tflops)
      if args.print_cost:
        continue
      suite_dir = os.path.join(args.out, kind)
      frontier_dir = args.frontier_dir or os.path.join(suite_dir, "frontier")
      if not args.report_only:
        # Seed by seed, methods first: a stopped suite has whole seeds to report.
        runs = [(seed, plan, os.path.join(suite_dir, plan.method)) for seed in seeds
                for plan in plans.values()]
        runs += [(seed, plan, os.path.join(frontier_dir, plan.method)) for seed in seeds
                 for plan in frontier]
        runs.sort(key=lambda run: seeds.index(run[0]))  # Stable: seed by seed, methods first.
        committed = committed_records(args.results, kind)
        for done, (seed, plan, method_dir) in enumerate(runs, start=1):
          print(f"[{done}/{len(runs)}] {kind} {plan.method} seed {seed} ...", flush=True)
          record = committed.get((plan.method, seed))
          if (record and not os.path.exists(
                  records.info_path(records.run_dir(method_dir, seed)))
              and record.bindings == list(bindings) + budget.method_bindings(
                  plan, seed, suite.peak_learning_rates.get(kind), suite)):
            print(f"[{done}/{len(runs)}] {kind} {plan.method} seed {seed}: finished in the "
                  "committed results", flush=True)
            continue
          seconds = run_one(gin_file, bindings, plan, seed, method_dir, kind,
                            suite.peak_learning_rates.get(kind), suite, launch)
          print(f"[{done}/{len(runs)}] {kind} {plan.method} seed {seed}: "
                f"{'done' if seconds else 'already finished'}"
                + (f" in {seconds:.0f} s" if seconds else ""), flush=True)
      try:
        headline = build_speedup_report(
            suite_dir, title=f"{suite.name} suite, {kind}", frontier_dir=frontier_dir,
            results_dir=os.path.join(args.results, kind) if args.results else None,
            scope=scope)
      except ValueError as error:
        raise SuiteError(str(error)) from None
      print(open(os.path.join(suite_dir, "report", "report.md")).read())
      if args.results:
        written = export_results(suite_dir, frontier_dir, os.path.join(args.results, kind),
                                 scope)
        print(f"exported {len(written)} run records to "
              f"{os.path.join(args.results, kind, 'runs')}")
      headlines.append(headline)
  except SuiteError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  except RuntimeError as error:
    print(f"error: {config_io.one_line(str(error))}", file=sys.stderr)
    return 1
  for headline in headlines:
    print(headline_line(headline))
  return 0


if __name__ == "__main__":
  sys.exit(main())
