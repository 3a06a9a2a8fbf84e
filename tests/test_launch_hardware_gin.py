"""The launch hardware files: included after an experiment they set the strategy, and the TPU
files keep eval/checkpoint intervals multiples of their longer loops (the Trainer refuses
others)."""

import gin
import pytest

from lag_tf import config_io
from lag_tf import configurables  # noqa: F401  Registers every configurable.
from lag_tf.models import TransformerConfig

EXPECTED_STRATEGY = {
    "gpu_mirrored.gin": ("mirrored", None),
    "multi_worker.gin": ("multi_worker", None),
    "tpu_v4_8.gin": ("tpu", "local"),
    "tpu_v5e_16.gin": ("tpu", "local"),
}


@pytest.mark.parametrize("hardware", sorted(EXPECTED_STRATEGY))
def test_hardware_file_included_after_the_experiment_wins(hardware):
  config_io.parse(["experiments/quickstart.gin"], [f"include 'hardware/{hardware}'"])
  name, tpu_address = EXPECTED_STRATEGY[hardware]
  assert gin.query_parameter("make_strategy.name") == name
  assert gin.query_parameter("configure_devices.logical_cpu_devices") == 0
  if tpu_address is None:
    return
  assert gin.query_parameter("make_strategy.tpu_address") == tpu_address
  steps_per_loop = gin.query_parameter("Trainer.steps_per_loop")
  assert steps_per_loop == 200
  for interval in ("Trainer.eval_every", "Trainer.checkpoint_every"):
    assert gin.query_parameter(interval) % steps_per_loop == 0
  assert gin.query_parameter("Trainer.global_batch_size") > 32  # bigger than the CPU default
  assert TransformerConfig().dtype_policy == "mixed_bfloat16"


def test_later_gin_file_also_switches_hardware():
  config_io.parse(["experiments/quickstart.gin", "hardware/tpu_v4_8.gin"], [])
  assert gin.query_parameter("make_strategy.name") == "tpu"
