"""What a run does: `train` now; `grow`, `lag`, `gradual` and `study` build on it."""

from lag_tf.experiments.registry import EXPERIMENTS, run_experiment
