"""The `python benchmarks/<script>.py` and `python -m benchmarks.<package>` commands README.md,
docs/*.md and the gin headers document.

Each documented script is run by some test: the short commands exactly as written here; the
others by the test named in COVERED (CI-sized forms of the same script). Commands too long for
CI are listed in TOO_LONG with what they run, so a newly documented benchmark fails this test
until it is covered.
"""

import glob
import os
import re
import shlex

import pytest

from main_fixtures import load_benchmark

from doc_fixtures import documents

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = re.compile(r"python (?:benchmarks/([a-z_]+)\.py|-m benchmarks\.([a-z_]+))[^`\n]*")

# Run exactly as documented below (about 20-25 s each).
RUN_HERE = {
    "python benchmarks/growth_cost.py --only stack --no_moments --repeats 2":
        r"growth_cost_ratio=\d+\.\d+",
    "python benchmarks/memory_estimate.py --configs=encoder-512 --jit=false":
        r"\| encoder-512 \| false \| .* \| \d+\.\d+ \|",
    "python benchmarks/adam_reset_steps.py": r"\| 25 \| 0\.54x \|",
    "python benchmarks/quickstart_seeds.py --report_only":
        r"difference over 8 seeds: mean -0\.0403 \[-0\.1572, \+0\.0766\] \(95%\), standard "
        r"deviation 0\.1399",
}
# Scripts whose documented commands another test runs in a CI-sized form.
COVERED = {
    "speedup": "tests/test_speedup.py (the smoke suite; every documented suite planned)",
    "throughput": "tests/test_benchmark_throughput.py",
    "probe_overhead": "tests/test_dry_run.py (its FLOP counts against the plan)",
    "probe_wall": "tests/test_probe_wall.py",
    "results_doc": "tests/test_results.py (regenerates docs/results.md and compares)",
}
# Documented, not run by CI: each runs for minutes or more on this 2-core machine.
TOO_LONG = {
    "python benchmarks/numerics.py": "eight 100-step runs, each in its own process: 4 min",
    "python benchmarks/growth_cost.py": "every operator at BERT-base width: 190 s, 6 GB",
    "python benchmarks/faults.py": "a reference LAG run and 23 faulted reruns",
    "python benchmarks/faults.py --experiment=quickstart --runs=0 --disk_full_per_kind=1 "
    "--corrupt_runs=1 --worker_kills=1": "a reference run and 4 faulted reruns",
    "python benchmarks/faults.py --runs=0 --disk_full_per_kind=2 --corrupt_runs=0 "
    "--worker_kills=0": "a reference LAG run and 6 faulted reruns",
    "python benchmarks/lag_study.py": "a 9-candidate correlation study",
    "python benchmarks/quickstart_seeds.py --seeds 8": "eight LAG quickstarts: 30 min",
}


def documented_commands():
  texts = list(documents().values())
  texts += [open(p).read() for p in glob.glob(os.path.join(REPO, "gin", "experiments", "*.gin"))]
  found = set()
  for text in texts:
    text = re.sub(r"\\?\n\s*#?\s*(?=--)", " ", text)  # Continuation lines of a command.
    for match in COMMAND.finditer(text):
      found.add(re.split(r"\s{3,}|\)$", match.group(0).strip())[0].strip())
  return found


def _benchmark(command):
  """The script's or the package's name."""
  script, package = COMMAND.match(command).groups()
  return script or package


def test_every_documented_benchmark_command_is_run_by_a_test():
  uncovered = [c for c in documented_commands()
               if c not in RUN_HERE and c not in TOO_LONG
               and _benchmark(c) not in COVERED]
  assert not uncovered, f"documented benchmark commands no test runs: {uncovered}"
  stale = [c for c in list(RUN_HERE) + list(TOO_LONG) if c not in documented_commands()]
  assert not stale, f"listed here but no longer documented: {stale}"


@pytest.mark.parametrize("command", sorted(RUN_HERE))
def test_short_benchmark_command_runs_as_documented(command, capsys, monkeypatch):
  """The script's main in this process, with the documented arguments as its argv
  (TensorFlow is imported once; memory_estimate.py still measures in its own child)."""
  assert command in documented_commands()
  script, *args = shlex.split(command)[1:]
  monkeypatch.setattr("sys.argv", [script] + args)
  code = load_benchmark(os.path.splitext(os.path.basename(script))[0]).main()
  out = capsys.readouterr().out
  assert code in (None, 0), out[-3000:]
  assert re.search(RUN_HERE[command], out), out[-3000:]


def test_numerics_refuses_a_step_count_the_trainer_cannot_loop_over(capsys):
  assert load_benchmark("numerics").main(["--steps", "15"]) == 2
  assert capsys.readouterr().err.startswith("error: --steps=15")
