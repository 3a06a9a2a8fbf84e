"""One tf.distribute strategy from one setting (Orbit's pattern).

Settings: 'default', 'one_device', 'mirrored', 'multi_worker', 'tpu'. The binary calls
`configure_devices` (logical CPU devices, to test MirroredStrategy on a CPU-only machine) first
and `make_strategy` before any other op (docs/design.md, "Platform constraints").
"""

from __future__ import annotations

from typing import Optional

import tensorflow as tf

from lag_tf import gin_registry
from lag_tf import console

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


@gin_registry.configurable
def configure_devices(logical_cpu_devices: int = 0) -> None:
  """Splits the first CPU into `logical_cpu_devices` logical devices (0 leaves it alone)."""
  if logical_cpu_devices <= 0:
    return
  cpus = tf.config.list_physical_devices("CPU")
  try:
    tf.config.set_logical_device_configuration(
        cpus[0], [tf.config.LogicalDeviceConfiguration()] * logical_cpu_devices)
  except RuntimeError as error:  # The runtime is already up; only fine if it already matches.
    if len(tf.config.list_logical_devices("CPU")) != logical_cpu_devices:
      raise RuntimeError(
          f"cannot split the CPU into {logical_cpu_devices} logical devices after TensorFlow "
          f"initialized: {error}") from None


@gin_registry.configurable
def make_strategy(name: str = "default", tpu_address: Optional[str] = None,
                  device: Optional[str] = None) -> tf.distribute.Strategy:
  """Returns the strategy called `name`.

  tpu_address: for 'tpu', a TPU name or grpc address, or 'local' on TPU VMs.
  device: for 'one_device' (default: the first GPU if any, else the CPU).
  """
  check_setting(name, tpu_address)
  # TF logs the devices of a new strategy at INFO; lag_tf.main names the strategy once the
  # run's input is checked, so a bad value's error line stays alone.
  with console.tensorflow_info_hidden():
    if name == "default":
      return tf.distribute.get_strategy()
    if name == "one_device":
      if device is None:
        device = "/gpu:0" if tf.config.list_physical_devices("GPU") else "/cpu:0"
      return tf.distribute.OneDeviceStrategy(device)
    if name == "mirrored":
      gpus = tf.config.list_logical_devices("GPU")
      devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
      return tf.distribute.MirroredStrategy(devices)
    if name == "multi_worker":
      # Reads TF_CONFIG. Collective ops on CPU use the ring implementation.
      return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def check_setting(name: str, tpu_address: Optional[str]) -> None:
  """ValueError for a setting make_strategy refuses (the dry run checks it without a strategy)."""
  if name not in STRATEGIES:
    raise ValueError(f"make_strategy.name={name!r}: expected one of {STRATEGIES}")
  if name == "tpu" and tpu_address is None:
    raise ValueError("make_strategy.tpu_address is required for name='tpu' "
                     "(use 'local' on a TPU VM)")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
  """True on the one worker that writes shared files (configs, metrics, decisions)."""
  resolver = getattr(strategy, "cluster_resolver", None)
  if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return True
  task_type, task_id = resolver.task_type, resolver.task_id
  return task_type is None or task_type == "chief" or (task_type == "worker" and task_id == 0)


def supports_xla(strategy: tf.distribute.Strategy) -> bool:
  """Whether `jit_compile=True` on the per-replica step works under this strategy.

  Measured (docs/design.md): yes under the default and one-device strategies; no under
  MirroredStrategy on logical CPU devices (an XLA resource-placement bug); TPUStrategy compiles
  with XLA regardless, so an extra jit_compile is unnecessary there.
  """
  return isinstance(strategy, tf.distribute.OneDeviceStrategy) or (
      not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy())
