"""Synthetic experiment dirs for the analysis tests: candidates whose eval-loss curves are known
(their ranking flips between initialization and the end)."""

import json
import math
import os

import numpy as np

GROWTH_STEP = 100
# Init losses rise a..e while final losses fall a..e: loss at init ranks them exactly backwards.
INIT = {"a": 3.0, "b": 3.2, "c": 3.4, "d": 3.6, "e": 3.8}
FINAL = {"a": 2.4, "b": 2.3, "c": 2.2, "d": 2.1, "e": 2.0}
EVAL_STEPS = [0, 1, 2, 4, 8, 16, 32, 50, 75, 100, 125, 150, 175, 200]


def _loss(name, step, rng, batches=8):
  """Exponential approach from INIT to FINAL; ranks flip near probe step 22."""
  mean = FINAL[name] + (INIT[name] - FINAL[name]) * math.exp(-step / 20.0)
  return (mean + 0.01 * rng.normal(size=batches)).tolist()


def write_candidate(directory, name, last_step=200, nan_at=None, seed=0, curve=None):
  """A candidate dir; its losses follow the curve of INIT/FINAL[curve or name]."""
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed * 100 + sum(map(ord, name)))
  with open(os.path.join(directory, "candidate.json"), "w") as f:
    json.dump({"name": name, "params": 1000 + sum(map(ord, name)), "flops_per_token": 6e3,
               "tokens_per_step": 256, "function_preserving": name in "ab",
               "growth_step": GROWTH_STEP}, f)
  lines = []
  for step in EVAL_STEPS:
    if step > last_step:
      break
    batch = _loss(curve or name, step, rng)
    eval_loss = float(np.mean(batch))
    record = {"step": GROWTH_STEP + step, "loss": eval_loss + 0.05, "learning_rate": 1e-3,
              "examples_seen": 32 * step, "eval_loss": eval_loss, "eval_batch_losses": batch}
    if nan_at is not None and step >= nan_at:
      record.update(loss="nan", eval_loss="nan", eval_batch_losses=["nan"] * len(batch))
    lines.append(json.dumps(record))
    if step < last_step:  # A train-only record between evals.
      lines.append(json.dumps({"step": GROWTH_STEP + step + 1, "loss": eval_loss}))
  with open(os.path.join(directory, "metrics.jsonl"), "w") as f:
    f.write("\n".join(lines) + "\n")


def write_study(root, last_steps=None, nan_at=None, seed=0):
  for name in INIT:
    write_candidate(os.path.join(root, "candidates", name), name,
                    (last_steps or {}).get(name, 200), (nan_at or {}).get(name), seed)
  return str(root)
