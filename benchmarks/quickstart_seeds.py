r"""How far the LAG quickstart's verdict moves with the seed: (winner - scratch) over seeds.

  python benchmarks/quickstart_seeds.py --seeds 8 --out /tmp/quickstart_seeds
  python benchmarks/quickstart_seeds.py --report_only

Runs gin/experiments/lag_quickstart.gin once per seed s = 0 .. --seeds - 1, each in its own
`python -m lag_tf.main` process in <out>/seed-<s> (Trainer.seed, LanguageModelingData.seed and
ProbeSchedule.growth_seed set to s: initialization, data order, growth noise; a finished run is
not run again), reads each run's winner and final eval losses (the winner's and its scratch
baseline's, from their metrics) and writes them to benchmarks/results/quickstart_seeds/
seeds.json. --report_only reads that committed file. Prints one row per seed, then the mean
difference with its 95% interval and the standard deviation over seeds: the quickstart's
`lag_experiment.seed_spread` (tests/test_readme.py holds the gin file to this file).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from scipy import stats  # noqa: E402

from lag_tf import model_dir_store as store  # noqa: E402
from lag_tf.analysis.runs import last_eval  # noqa: E402

GIN_FILE = "gin/experiments/lag_quickstart.gin"
RESULTS = os.path.join(REPO, "benchmarks", "results", "quickstart_seeds", "seeds.json")


def run_seed(seed: int, model_dir: str) -> None:
  """The quickstart for `seed` in its own process (a finished run returns at once)."""
  bindings = [f"Trainer.seed = {seed}", f"LanguageModelingData.seed = {seed}",
              f"ProbeSchedule.growth_seed = {seed}"]
  command = ([sys.executable, "-m", "lag_tf.main", f"--gin_file={GIN_FILE}",
              f"--model_dir={model_dir}"] + [f"--gin_bindings={b}" for b in bindings])
  with open(model_dir + ".log", "a") as log:
    code = subprocess.call(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
  if code:
    raise RuntimeError(f"seed {seed} exited {code}; see {model_dir}.log")


def read_seed(seed: int, model_dir: str) -> dict:
  """The run's winner and the final eval losses of the winner and the scratch baseline."""
  decision = store.read_decision(model_dir, 0)
  winner = last_eval(store.metrics_path(store.candidate_dir(model_dir, decision.winner)))
  scratch = last_eval(store.metrics_path(store.scratch_dir(model_dir)))
  return {"seed": seed, "winner": decision.winner, "winner_eval_loss": winner.eval_loss,
          "scratch_eval_loss": scratch.eval_loss,
          "difference": winner.eval_loss - scratch.eval_loss}


def spread(rows) -> dict:
  """Mean difference, its 95% t interval and the standard deviation over seeds."""
  differences = [r["difference"] for r in rows]
  n = len(differences)
  mean = sum(differences) / n
  sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
  half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
  return {"seeds": n, "mean": mean, "low": mean - half, "high": mean + half, "sd": sd}


def report(rows) -> str:
  lines = ["| seed | winner | winner loss | scratch loss | difference |",
           "| ---: | --- | ---: | ---: | ---: |"]
  lines += [f"| {r['seed']} | {r['winner']} | {r['winner_eval_loss']:.4f} | "
            f"{r['scratch_eval_loss']:.4f} | {r['difference']:+.4f} |" for r in rows]
  s = spread(rows)
  lines.append(f"difference over {s['seeds']} seeds: mean {s['mean']:+.4f} "
               f"[{s['low']:+.4f}, {s['high']:+.4f}] (95%), standard deviation {s['sd']:.4f}")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--seeds", type=int, default=8)
  parser.add_argument("--out", default="/tmp/quickstart_seeds")
  parser.add_argument("--report_only", action="store_true",
                      help=f"print the committed {os.path.relpath(RESULTS, REPO)}")
  args = parser.parse_args(argv)
  if args.report_only:
    with open(RESULTS) as f:
      rows = json.load(f)["runs"]
  else:
    if args.seeds < 2:
      print(f"error: --seeds={args.seeds}: expected >= 2 (a spread needs two)", file=sys.stderr)
      return 2
    rows = []
    for seed in range(args.seeds):
      model_dir = os.path.join(args.out, f"seed-{seed}")
      os.makedirs(args.out, exist_ok=True)
      print(f"seed {seed}: {model_dir}", flush=True)
      run_seed(seed, model_dir)
      rows.append(read_seed(seed, model_dir))
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
      json.dump({"gin_file": GIN_FILE, "runs": rows, "spread": spread(rows)}, f, indent=1)
  print(report(rows))
  return 0


if __name__ == "__main__":
  sys.exit(main())
