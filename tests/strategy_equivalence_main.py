"""Subprocess for test_training: trains the same tiny model under the default strategy and under
MirroredStrategy on 2 logical CPU devices (devices must be split before TF initializes) and
prints both metric streams as JSON."""

import dataclasses
import json
import sys

from lag_tf.training.strategy import configure_devices, make_strategy

configure_devices(2)

from trainer_fixtures import tiny_config, tiny_trainer  # noqa: E402
from lag_tf.model_dir_store import read_metrics  # noqa: E402


def main(out_dir, data_dir, kind):
  streams = {}
  for name in ("default", "mirrored"):
    trainer = tiny_trainer(f"{out_dir}/{name}", data_dir, strategy=make_strategy(name),
                           config=tiny_config(kind), train_steps=20)
    assert trainer.strategy.num_replicas_in_sync == (2 if name == "mirrored" else 1)
    trainer.train()
    streams[name] = [{k: v for k, v in dataclasses.asdict(row).items() if v is not None}
                     for row in read_metrics(trainer.metrics.path)]
  print(json.dumps(streams))


if __name__ == "__main__":
  main(*sys.argv[1:])
