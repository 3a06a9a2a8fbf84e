"""Subprocess for test_training: trains the same tiny model of each kind under the default
strategy and under MirroredStrategy on 2 logical CPU devices (devices must be split before TF
initializes) and prints the metric streams as JSON, {kind: {strategy: rows}}. One strategy of
each name serves every kind: a second MirroredStrategy in one process fails its collectives."""

import dataclasses
import json
import sys

from lag_tf.training.strategy import configure_devices, make_strategy

configure_devices(2)

from trainer_fixtures import tiny_config, tiny_trainer  # noqa: E402
from lag_tf.model_dir_store import read_metrics  # noqa: E402


def main(out_dir, data_dir, kinds):
  strategies = {name: make_strategy(name) for name in ("default", "mirrored")}
  streams = {}
  for kind in kinds.split(","):
    for name, strategy in strategies.items():
      trainer = tiny_trainer(f"{out_dir}/{kind}/{name}", data_dir, strategy=strategy,
                             config=tiny_config(kind), train_steps=20)
      assert trainer.strategy.num_replicas_in_sync == (2 if name == "mirrored" else 1)
      trainer.train()
      streams.setdefault(kind, {})[name] = [
          {k: v for k, v in dataclasses.asdict(row).items() if v is not None}
          for row in read_metrics(trainer.metrics.path)]
  print(json.dumps(streams))


if __name__ == "__main__":
  main(*sys.argv[1:])
