"""How much farther stock AdamW moves freshly reset moments than a fresh Adam, by growth step.

After growth, parameters whose moments start at zero (fresh layers, padded units, 'reset') are
corrected by stock AdamW as if their moments were as old as the run: this prints, from Adam's
formulas (lag_tf.training.optimizers.stock_over_fresh_update), stock AdamW's update over a
fresh Adam's `s` steps after growth at step T (beta_1 0.9, beta_2 0.999, make_optimizer's
defaults). GrowthAdamW's update is the fresh Adam's. Above 1, stock steps farther; early
growth makes it step *shorter* at first.

  python benchmarks/adam_reset_steps.py
"""

from __future__ import annotations

import os
import sys

# Run as `python benchmarks/adam_reset_steps.py` from anywhere: import the repo's lag_tf.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lag_tf.training.optimizers import stock_over_fresh_update  # noqa: E402

GROWTH_STEPS = (25, 300, 2000, 10000)
STEPS_AFTER = (1, 2, 5, 10, 100, 1000)


def main() -> None:
  print("| growth step T | " + " | ".join(f"s = {s}" for s in STEPS_AFTER) + " |")
  print("| ---: | " + " | ".join("---:" for _ in STEPS_AFTER) + " |")
  for growth_step in GROWTH_STEPS:
    ratios = stock_over_fresh_update(growth_step, STEPS_AFTER)
    print(f"| {growth_step} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")


if __name__ == "__main__":
  main()
