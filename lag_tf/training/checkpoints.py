"""Checkpoint utilities: restore the newest readable checkpoint, find the last good one.

A checkpoint can be damaged after it was committed: a disk that filled up or a copy that was
cut (rsync, gsutil), a bad sector. TF verifies every tensor's checksum while restoring, so a
damaged checkpoint fails loudly; `restore_latest_good` then says so and falls back to the
previous one the CheckpointManager kept (steps after it are recomputed on resume, and the
damaged files are overwritten by the next save at that step).

A checkpoint written by an older layout of the same objects is not damaged: when the current
layout leaves objects unmatched and an `OlderLayout` matches every one of its own (e.g. stock
AdamW's, which lacks GrowthAdamW's birth slots), it is restored through that layout, which
completes the state and says in one line what it assumed.
"""

from __future__ import annotations

import os
import re
from typing import Callable, List, NamedTuple, Optional, Sequence

import tensorflow as tf
from absl import logging

from lag_tf import console

_NUMBER = re.compile(r"-(\d+)$")


class NoReadableCheckpointError(RuntimeError):
  """No checkpoint of a directory restores (damaged, or other objects than this program's);
  the message is one line."""


class OlderLayout(NamedTuple):
  """Another object graph over the same variables that checkpoints may have been written with.

  checkpoint: the objects under the older layout's names (a subset of the current ones).
  complete: called after restoring through it; sets what the older layout lacks and returns
    the one-line note to log.
  """
  checkpoint: tf.train.Checkpoint
  complete: Callable[[], str]


def _restore(checkpoint: tf.train.Checkpoint, path: str,
             older_layouts: Sequence[OlderLayout]) -> Optional[str]:
  """Restores `path` through the current layout or, if that misses objects, the first older
  layout that matches all of its own; returns that layout's note (None for the current one)."""
  try:
    checkpoint.restore(path).assert_existing_objects_matched()
    return None
  except AssertionError:  # Objects left unmatched: an older layout, or another program's.
    for layout in older_layouts:
      try:
        layout.checkpoint.restore(path).assert_existing_objects_matched()
      except AssertionError:
        continue
      return layout.complete()
    raise


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
    indices = tf.io.gfile.glob(os.path.join(directory, "*-*.index"))
    paths = [index[:-len(".index")] for index in indices]
    return sorted(paths, key=_number, reverse=True)
  if state is None:
    return []
  # TF has joined each relative path to `directory` already (relative when it is).
  paths = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  return list(reversed(paths))


def restore_latest_good(checkpoint: tf.train.Checkpoint, directory: str, prefix: str = "",
                        older_layouts: Sequence[OlderLayout] = ()) -> Optional[str]:
  """Restores the newest checkpoint of `directory` that reads back whole, through the current
  layout or one of `older_layouts`; returns its path (None if there is none). A damaged (or
  mismatched) newer checkpoint is reported and skipped; if none restores,
  NoReadableCheckpointError (nothing is deleted: the user decides)."""
  paths = checkpoint_paths(directory)
  mismatched = []
  for index, path in enumerate(paths):
    try:
      note = _restore(checkpoint, path, older_layouts)
    except Exception as error:  # pylint: disable=broad-except
      # TF reports damage as OpError (checksums, a cut index), ValueError or IndexError ("Read
      # less bytes than requested"), depending on which file was cut where; AssertionError
      # means it read back whole but holds other objects than this program's (no layout fit).
      if isinstance(error, AssertionError):
        mismatched.append(path)
      following = paths[index + 1] if index + 1 < len(paths) else None
      logging.warning("%scheckpoint %s %s (%s); %s", prefix, path,
                      "does not match this model" if isinstance(error, AssertionError)
                      else "is damaged",
                      str(error).splitlines()[0][:200] if str(error) else type(error).__name__,
                      f"falling back to {following}" if following else "no older one is left")
      continue
    if note:
      logging.warning("%scheckpoint %s: %s", prefix, path, note)
    if index:
      logging.warning("%sresumed from %s instead of the unreadable newer checkpoint %s", prefix,
                      path, paths[0])
    return path
  if paths:
    problem = {0: "is damaged", len(paths): "does not match this model"}.get(
        len(mismatched), "is damaged or does not match this model")
    raise NoReadableCheckpointError(
        f"{prefix}every checkpoint in {directory} {problem} ({', '.join(paths)}); move that "
        "directory away to restart this model from scratch")
  return None


def save(manager: tf.train.CheckpointManager, number: int) -> str:
  """`manager.save(checkpoint_number=number)` without TF's INFO line on every save (the time
  its sharding callback took, tensorflow/python/checkpoint/functional_saver.py); TF's
  warnings and errors still show."""
  with console.tensorflow_info_hidden():
    return manager.save(checkpoint_number=number)


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
