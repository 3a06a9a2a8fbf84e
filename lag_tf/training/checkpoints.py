"""Checkpoint utilities: restore the newest readable checkpoint, find the last good one.

A checkpoint can be damaged after it was committed: a disk that filled up or a copy that was
cut (rsync, gsutil), a bad sector. TF verifies every tensor's checksum while restoring, so a
damaged checkpoint fails loudly; `restore_latest_good` then says so and falls back to the
previous one the CheckpointManager kept (steps after it are recomputed on resume, and the
damaged files are overwritten by the next save at that step).
"""

from __future__ import annotations

import os
import re
from typing import List, Optional

import tensorflow as tf
from absl import logging

_NUMBER = re.compile(r"-(\d+)$")


class NoReadableCheckpointError(RuntimeError):
  """Every checkpoint of a directory is damaged; the message is one line."""


def _number(path: str) -> int:
  match = _NUMBER.search(path)
  return int(match.group(1)) if match else -1


def checkpoint_paths(directory: str) -> List[str]:
  """The committed checkpoints of `directory`, newest first.

  Committed = listed in the CheckpointManager's state file (a checkpoint whose save was killed
  before the state file was updated is not one). If the state file itself is unreadable, every
  `<prefix>-<n>.index` counts, by step number.
  """
  try:
    state = tf.train.get_checkpoint_state(directory)
  except (tf.errors.OpError, ValueError) as error:  # A damaged state file (text proto).
    logging.warning("Checkpoint state in %s is unreadable (%s); using the checkpoint files.",
                    directory, str(error).splitlines()[0] if str(error) else type(error).__name__)
    state = None
    indices = tf.io.gfile.glob(os.path.join(directory, "*-*.index"))
    paths = [index[:-len(".index")] for index in indices]
    return sorted(paths, key=_number, reverse=True)
  if state is None:
    return []
  paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  paths = [p if os.path.isabs(p) or "://" in p else os.path.join(directory, p) for p in paths]
  return list(reversed(paths))


def restore_latest_good(checkpoint: tf.train.Checkpoint, directory: str,
                        prefix: str = "") -> Optional[str]:
  """Restores the newest checkpoint of `directory` that reads back whole; returns its path
  (None if there is none). A damaged newer checkpoint is reported and skipped; if all are
  damaged, NoReadableCheckpointError (nothing is deleted: the user decides)."""
  paths = checkpoint_paths(directory)
  for index, path in enumerate(paths):
    try:
      checkpoint.restore(path).assert_existing_objects_matched()
    except Exception as error:  # pylint: disable=broad-except
      # TF reports damage as OpError (checksums), ValueError, AssertionError or IndexError
      # ("Read less bytes than requested"), depending on which file was cut where.
      following = paths[index + 1] if index + 1 < len(paths) else None
      logging.warning("%scheckpoint %s is damaged (%s); %s", prefix, path,
                      str(error).splitlines()[0][:200] if str(error) else type(error).__name__,
                      f"falling back to {following}" if following else "no older one is left")
      continue
    if index:
      logging.warning("%sresumed from %s instead of the damaged newer checkpoint %s", prefix,
                      path, paths[0])
    return path
  if paths:
    raise NoReadableCheckpointError(
        f"{prefix}every checkpoint in {directory} is damaged ({', '.join(paths)}); move that "
        "directory away to restart this model from scratch")
  return None


def newest_checkpoint(model_dir: str) -> Optional[str]:
  """The most recently written committed checkpoint anywhere in a model dir (base, candidates,
  stages, seeds), or None: what a user restarts from after a failure."""
  states = []
  for depth in range(4):  # ckpt/, grown/ckpt, candidates/*/ckpt, stage-*/candidates/*/ckpt
    states += tf.io.gfile.glob(os.path.join(model_dir, *(["*"] * depth), "ckpt", "checkpoint"))
  best, best_time = None, -1.0
  for state in states:
    paths = checkpoint_paths(os.path.dirname(state))
    if not paths:
      continue
    try:
      written = tf.io.gfile.stat(paths[0] + ".index").mtime_nsec
    except tf.errors.OpError:
      continue
    if written > best_time:
      best, best_time = paths[0], written
  return best
