"""Wall time and peak memory of every growth operator on a BERT-base-sized state.

Grows a 6-layer BERT-base-width encoder state (d_model 768, 12 heads, d_ff 3072, vocab 30522,
max_len 512; numpy only, no Keras model is built) to 12 layers with each depth operator, and to
2x width (d_model 1536, 24 heads, d_ff 6144) with the width operators, once with the weights
only and once with AdamW moments ('map' policy: three trees). Peak memory is tracemalloc's peak
during the operator, above what was allocated before it (the input state is not counted).

Times are the minimum over --repeats runs (the first run of a size pays page faults).

The last line is `growth_cost_ratio=<x>`: the time to grow 6 -> 12 layers by stacking (weights
only, no tracemalloc) over the time of a plain numpy copy of the grown parameters, medians of
--repeats runs in this process. Target: x <= 2.

  python benchmarks/growth_cost.py [--no_moments] [--only SUBSTRING] [--repeats N]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc

import numpy as np

# Run as `python benchmarks/growth_cost.py` from anywhere: import the repo's lag_tf.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lag_tf.growth import ModelState, get_operator  # noqa: E402
from lag_tf.growth.state import tree_items  # noqa: E402
from lag_tf.models.config import TransformerConfig  # noqa: E402

BASE = TransformerConfig(kind="encoder", num_layers=6, d_model=768, num_heads=12, d_ff=3072,
                         vocab_size=30522, max_len=512)
WIDE = dict(target_d_model=1536, target_heads=24, target_d_ff=6144)
DEPTH = dict(target_layers=12)

# (label, operator, params, noise_scale)
CASES = [
    ("stack", "stack_layers", DEPTH, 0.0),
    ("stack +noise", "stack_layers", DEPTH, 0.01),
    ("duplicate", "duplicate_layers", DEPTH, 0.0),
    ("copy_top (gradual)", "copy_top_layers", DEPTH, 0.0),
    ("midas block=2", "copy_middle_block", dict(DEPTH, block_size=2), 0.0),
    ("copy_block top layer", "copy_block", dict(DEPTH, start=-1, stop=None), 0.0),
    ("layer_map", "layer_map", dict(sources=[0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0]), 0.0),
    ("random_layers top", "random_layers", DEPTH, 0.0),
    ("zero_output random", "zero_output_layers", DEPTH, 0.0),
    ("zero_output copy", "zero_output_layers", dict(DEPTH, position="interleave",
                                                    inner="copy"), 0.0),
    ("split_ffn 3072->6144", "split_ffn", dict(target_d_ff=6144), 0.0),
    ("split_heads 12->24", "split_heads", dict(target_heads=24), 0.0),
    ("widen_d_model 2x", "widen_d_model", WIDE, 0.0),
    ("widen_d_model 2x +noise", "widen_d_model", WIDE, 0.01),
    ("bert2bert_aki 2x", "bert2bert_aki", WIDE, 0.0),
    ("zero_pad heads+ffn 2x", "zero_pad", dict(target_heads=24, target_d_ff=6144), 0.0),
    ("random_pad 2x", "random_pad", WIDE, 0.0),
    ("deep_fusion 2x", "deep_fusion", {}, 0.0),
]


def _measure(fn):
  gc.collect()
  tracemalloc.start()
  baseline = tracemalloc.get_traced_memory()[0]
  start = time.perf_counter()
  result = fn()
  seconds = time.perf_counter() - start
  peak = tracemalloc.get_traced_memory()[1] - baseline
  tracemalloc.stop()
  return result, seconds, peak


def _with_moments(state: ModelState) -> ModelState:
  return state.replace(first_moments=state.copy().weights, second_moments=state.copy().weights,
                       optimizer_step=1000)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--no_moments", action="store_true", help="weights only")
  parser.add_argument("--only", default="", help="run the cases whose label contains this")
  parser.add_argument("--repeats", type=int, default=3, help="runs per case (min time)")
  args = parser.parse_args()

  rng = np.random.default_rng(0)
  start = time.perf_counter()
  small = ModelState.init(BASE, rng)
  other = ModelState.init(BASE, rng)
  print(f"base state: {small.params() / 1e6:.1f}M params, {small.nbytes() / 2**20:.0f} MiB "
        f"(initialized in {time.perf_counter() - start:.1f}s)")
  inputs = {"weights": (small, other)}
  if not args.no_moments:
    inputs["+moments"] = (_with_moments(small), _with_moments(other))

  header = f"{'operator':26s} {'params':>8s}"
  for name in inputs:
    header += f" | {name + ' s':>11s} {'peak MiB':>9s}"
  print(header)
  print("-" * len(header))
  for label, op_name, params, noise_scale in CASES:
    if args.only not in label:
      continue
    op = get_operator(op_name)
    row, grown_params = "", 0
    for state, second in inputs.values():
      kwargs = dict(params, noise_scale=noise_scale)
      if op.needs_second_model:
        kwargs["other"] = second
      runs = []
      for _ in range(args.repeats):
        (_, grown), seconds, peak = _measure(
            lambda: op.fn(state.config, state, np.random.default_rng(1), **kwargs))
        grown_params = grown.params()
        runs.append((seconds, peak))
        del grown
      row += f" | {min(r[0] for r in runs):11.2f} {max(r[1] for r in runs) / 2**20:9.0f}"
    print(f"{label:26s} {grown_params / 1e6:7.1f}M{row}", flush=True)
  print(f"growth_cost_ratio={growth_cost_ratio(small, max(args.repeats, 5)):.2f}")


def growth_cost_ratio(small: ModelState, repeats: int) -> float:
  """Median time of stack growth over the median time of copying the grown arrays."""
  stack = get_operator("stack_layers")
  grow_times, copy_times = [], []
  for _ in range(repeats):
    gc.collect()
    start = time.perf_counter()
    _, grown = stack.fn(small.config, small, np.random.default_rng(1), **DEPTH)
    grow_times.append(time.perf_counter() - start)
    arrays = [array for _, array in tree_items(grown.weights)]
    gc.collect()
    start = time.perf_counter()
    copies = [np.array(a, copy=True) for a in arrays]
    copy_times.append(time.perf_counter() - start)
    del grown, arrays, copies
  grow, copy = float(np.median(grow_times)), float(np.median(copy_times))
  print(f"stack 6->12 (weights): {grow:.3f}s; numpy copy of the grown parameters: {copy:.3f}s")
  return grow / copy


if __name__ == "__main__":
  main()
