"""A damaged newest checkpoint: the Trainer says so and resumes from the previous one; every
checkpoint damaged: a one-line error, nothing deleted. Run-time resource failures (out of
memory, disk full) exit 1 with one line naming the last good checkpoint."""

import errno
import logging
import os

import pytest
import tensorflow as tf

from lag_tf import main as main_lib
from lag_tf.training import checkpoints, failures
from lag_tf.training.metrics import read_metrics
from main_fixtures import run_main_in_process
from trainer_fixtures import TINY_RUN as TINY
from trainer_fixtures import tiny_trainer


FAST = dict(train_steps=20, checkpoint_every=10, steps_per_loop=10, eval_every=0, eval_batches=1)


def _damage(path, how):
  if how == "truncated":
    with open(path, "r+b") as f:
      f.truncate(os.path.getsize(path) // 2)
  else:  # One flipped byte in the middle: the tensor checksum no longer matches.
    with open(path, "r+b") as f:
      f.seek(os.path.getsize(path) // 2)
      byte = f.read(1)
      f.seek(-1, os.SEEK_CUR)
      f.write(bytes([byte[0] ^ 0xFF]))


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, data_dir, caplog):
  trainer = tiny_trainer(tmp_path, data_dir, **FAST)
  trainer.train()
  expected = {v.path: v.numpy() for v in trainer.model.trainable_variables}
  ckpt = tmp_path / "ckpt"
  _damage(str(ckpt / "ckpt-20.data-00000-of-00001"), "flipped")
  again = tiny_trainer(tmp_path, data_dir, **FAST)
  with caplog.at_level(logging.WARNING):
    assert again.restore() == 10
  assert "ckpt-20 is damaged" in caplog.text and "falling back to" in caplog.text
  assert [r["step"] for r in read_metrics(str(tmp_path / "metrics.jsonl"))] == [10]
  again.train()  # Recomputes steps 11-20 and overwrites the damaged files.
  for variable in again.model.trainable_variables:
    assert variable.numpy() == pytest.approx(expected[variable.path], abs=1e-4)

  # Every checkpoint damaged: one error naming them; nothing is deleted.
  _damage(str(ckpt / "ckpt-20.data-00000-of-00001"), "truncated")
  (ckpt / "ckpt-10.index").write_bytes(b"garbage")
  third = tiny_trainer(tmp_path, data_dir, **FAST)
  with pytest.raises(checkpoints.NoReadableCheckpointError, match="every checkpoint in .*damaged"):
    third.restore()
  assert (ckpt / "ckpt-10.index").read_bytes() == b"garbage"
  assert checkpoints.newest_checkpoint(str(tmp_path)).endswith("ckpt-20")


def test_resource_errors_become_one_line(tmp_path):
  ckpt = tmp_path / "candidates" / "a" / "ckpt"
  ckpt.mkdir(parents=True)
  (ckpt / "ckpt-7.index").write_text("x")
  (ckpt / "checkpoint").write_text('model_checkpoint_path: "ckpt-7"\n'
                                   'all_model_checkpoint_paths: "ckpt-7"\n')
  full = failures.describe(OSError(errno.ENOSPC, "No space left on device"), str(tmp_path))
  assert full.startswith("the disk is full") and str(ckpt / "ckpt-7") in full
  # Seen at the decision commit under benchmarks/faults.py: the errno did not survive.
  bare = failures.describe(OSError("[Errno 28] No space left on device"), str(tmp_path))
  assert bare.startswith("the disk is full")
  oom = tf.errors.ResourceExhaustedError(
      None, None, "OOM when allocating tensor with shape[32,2,100000,100000] and type float")
  line = failures.describe(oom, str(tmp_path / "empty"))
  assert "out of memory" in line and "shape[32,2,100000,100000]" in line
  assert "no checkpoint was saved yet" in line and "\n" not in line


@pytest.mark.parametrize("error, message", [
    (tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[9]"),
     "out of memory at run time"),
    (OSError(errno.ENOSPC, "No space left on device"), "the disk is full"),
])
def test_main_exits_1_with_one_line_on_a_resource_error(tmp_path, data_dir, capsys, monkeypatch,
                                                        error, message):
  def fail(strategy, model_dir):
    raise error
  monkeypatch.setattr(main_lib, "run_experiment", fail)
  code, _, err = run_main_in_process(TINY + [f"--gin_bindings=DATA_DIR = '{data_dir}'",
                                      f"--model_dir={tmp_path / 'run'}"], capsys, monkeypatch)
  lines = err.strip().splitlines()
  assert code == 1 and lines[-1].startswith(f"error: {message}"), err[-2000:]
  assert "Traceback" not in err
