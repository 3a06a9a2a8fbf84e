"""Which settings change a run's numbers on one machine: the CPU kernels' instruction set and the
thread count, against the same run twice.

  python benchmarks/numerics.py [--steps 100]

Trains the LAG quickstart's 2-layer decoder base (gin/experiments/lag_quickstart.gin as a
`train` run) for --steps steps once per variant, each in a child process with its environment
set before TensorFlow starts: the defaults (twice), oneDNN held to AVX2
(`ONEDNN_MAX_CPU_ISA=AVX2`, what a CPU without AVX-512 runs), TF's oneDNN switch off
(`TF_ENABLE_ONEDNN_OPTS=0`), both, and 1 or 4 intra-op threads. Prints one row per variant:
the final training loss and eval loss to all digits, and whether they equal the first default
run's bit for bit. A variant that differs means two machines that differ in it train different
models from the same config (docs/design.md, "Numerics across machines").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VARIANTS = [
    ("defaults", {}),
    ("defaults, again", {}),
    ("oneDNN held to AVX2", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    ("1 intra-op thread", {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}),
    ("4 intra-op threads", {"TF_NUM_INTRAOP_THREADS": "4"}),
    ("AVX2, 4 intra-op threads", {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_NUM_INTRAOP_THREADS": "4"}),
    ("TF_ENABLE_ONEDNN_OPTS=0", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    ("TF_ENABLE_ONEDNN_OPTS=0, AVX2", {"TF_ENABLE_ONEDNN_OPTS": "0",
                                       "ONEDNN_MAX_CPU_ISA": "AVX2"}),
]


def final_losses(steps: int, env: dict, model_dir: str):
  """(training loss, eval loss) at the last step of one child-process run."""
  command = [sys.executable, "-m", "lag_tf.main",
             "--gin_file=gin/experiments/lag_quickstart.gin", f"--model_dir={model_dir}",
             "--gin_bindings=run_experiment.kind = 'train'", "--gin_bindings=NUM_LAYERS = 2",
             f"--gin_bindings=Trainer.train_steps = {steps}",
             f"--gin_bindings=WarmupDecaySchedule.total_steps = {steps}"]
  result = subprocess.run(command, cwd=REPO, env=dict(os.environ, **env), capture_output=True,
                          text=True)
  if result.returncode != 0:
    raise RuntimeError(f"{' '.join(command)} exited {result.returncode}: "
                       f"{result.stderr.strip().splitlines()[-1:]}")
  with open(os.path.join(model_dir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  last = [r for r in rows if r.get("step") == steps]
  loss = next(r["loss"] for r in last if "loss" in r)
  eval_loss = next(r["eval_loss"] for r in last if "eval_loss" in r)
  return loss, eval_loss


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=100)
  args = parser.parse_args(argv)
  if args.steps < 10 or args.steps % 10:
    print(f"error: --steps={args.steps}: expected a multiple of 10, >= 10", file=sys.stderr)
    return 2
  print("| variant | training loss | eval loss | bit-identical to the defaults |")
  print("| --- | ---: | ---: | --- |")
  reference = None
  with tempfile.TemporaryDirectory() as tmp:
    for index, (name, env) in enumerate(VARIANTS):
      losses = final_losses(args.steps, env, os.path.join(tmp, str(index)))
      reference = reference or losses
      print(f"| {name} | {losses[0]!r} | {losses[1]!r} | "
            f"{'yes' if losses == reference else 'no'} |", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
