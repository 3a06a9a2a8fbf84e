"""The step-memory estimate (lag_tf/training/memory.py) against the measured peak RSS of training
on CPU.

  python benchmarks/memory_estimate.py
  python benchmarks/memory_estimate.py --configs=encoder-512 --steps=2

Each config runs in its own process: the RSS after TensorFlow, the data pipeline and the
compiled-function machinery are up (a first Trainer on a 1-token model has trained 1 step) is
the baseline; then the measured Trainer trains `--steps` steps and evaluates, and the growth of
the peak RSS (VmHWM) over the baseline is compared with the estimate of a training step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

# name: (kind, layers, d_model, heads, d_ff, length, batch)
CONFIGS = {
    "encoder-512": ("encoder", 2, 256, 4, 1024, 512, 32),
    "decoder-256": ("decoder", 4, 256, 4, 1024, 256, 32),
}


def _status(field: str) -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1]) * 1024
  raise KeyError(field)


def measure(name: str, steps: int, jit: bool, data_dir: str) -> dict:
  """In this process: baseline RSS, then the peak RSS of training the config."""
  import tensorflow as tf
  from lag_tf.training import memory
  from lag_tf.data import LanguageModelingData
  from lag_tf.models import TransformerConfig
  from lag_tf.training.trainer import Trainer

  kind, layers, d_model, heads, d_ff, length, batch = CONFIGS[name]
  data = LanguageModelingData("python_stdlib_corpus/small", data_dir=data_dir,
                              sequence_length=length)
  strategy = tf.distribute.get_strategy()
  common = dict(global_batch_size=batch, steps_per_loop=1, eval_every=0, eval_batches=1,
                checkpoint_every=1000, jit_compile=jit)
  warm = TransformerConfig(kind=kind, num_layers=1, d_model=8, num_heads=1, d_ff=8,
                           max_len=length)
  with tempfile.TemporaryDirectory() as scratch:
    Trainer(warm, data, strategy, os.path.join(scratch, "warm"), train_steps=1,
            **common).train()
    baseline = _status("VmRSS")
    config = TransformerConfig(kind=kind, num_layers=layers, d_model=d_model, num_heads=heads,
                               d_ff=d_ff, max_len=length)
    trainer = Trainer(config, data, strategy, os.path.join(scratch, "run"), train_steps=steps,
                      **common)
    trainer.train()
    peak = _status("VmHWM")
  mask = data.masking.probability if config.objective == "mlm" else None
  estimate = memory.estimate_step_memory(config, batch, mask)
  return {"config": name, "jit": jit, "baseline": baseline, "measured": peak - baseline,
          "estimate_train": estimate.train_peak, "estimate_eval": estimate.eval_peak,
          "largest": estimate.largest_term}


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--configs", default=",".join(CONFIGS))
  parser.add_argument("--steps", type=int, default=3)
  parser.add_argument("--jit", default="false,true", help="XLA settings to measure")
  parser.add_argument("--data_dir", default=None, help="tfds data dir (default: prepared in a "
                      "temporary dir)")
  parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # Child: one measurement.
  args = parser.parse_args()
  if args.one:
    name, jit = args.one.split(":")
    print(json.dumps(measure(name, args.steps, jit == "true", args.data_dir)))
    return 0
  data_dir = args.data_dir
  if not data_dir:
    from lag_tf import data
    data_dir = tempfile.mkdtemp(prefix="lag_tf_memory_")
    data.load_or_prepare("python_stdlib_corpus/small", data_dir)
  from lag_tf.training.memory import format_bytes
  print("| config | XLA | step estimate (train / eval) | largest term | measured peak RSS "
        "growth | estimate / measured |")
  print("| --- | --- | --- | --- | --- | --- |")
  for name in args.configs.split(","):
    for jit in args.jit.split(","):
      output = subprocess.run(
          [sys.executable, __file__, f"--one={name}:{jit}", f"--steps={args.steps}",
           f"--data_dir={data_dir}"], cwd=REPO, capture_output=True, text=True,
          env=dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2"), check=True)
      row = json.loads(output.stdout.strip().splitlines()[-1])
      print(f"| {name} | {jit} | {format_bytes(row['estimate_train'])} / "
            f"{format_bytes(row['estimate_eval'])} | {row['largest']} | "
            f"{format_bytes(row['measured'])} | {row['estimate_train'] / row['measured']:.2f} |",
            flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
