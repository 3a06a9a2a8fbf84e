"""Whose files are in a model dir: lag_tf never adopts a directory that holds someone else's.

A model dir is a lag_tf run once it holds `config.gin` (written first, before any result). An
existing directory that is not empty and holds no `config.gin` belongs to someone else (a
user's own `metrics.jsonl`, notes, a dataset): lag_tf refuses it, because resuming would append
to, "repair" or overwrite those files. With `allow_non_empty` lag_tf uses it alongside the
files already there, provided none of them has a name lag_tf writes (`OWN_NAMES`): then no
file lag_tf did not write is ever opened for writing.
"""

from __future__ import annotations

import fnmatch
from typing import List

import tensorflow as tf

from lag_tf import model_dir_store as store

# Top-level names lag_tf writes in a model dir (files and dirs; glob patterns): the store's.
OWN_NAMES = store.TOP_LEVEL_NAMES
# lag_tf's lock (a run that is starting), write probes and atomic temporaries: they do
# not make a directory someone else's.
_TRANSIENT = ("run.lock", "run.lock.*.tmp", ".write_probe.*", "config.gin.tmp.*") + tuple(
    f".{name}.*.tmp" for name in ("config.gin", "operative_config.gin", "metrics.jsonl",
                                  "growth.json", "summary.md", "run.lock"))


class ForeignDirError(ValueError):
  """The model dir holds files lag_tf did not write; the message is one line."""


def _matches(name: str, patterns) -> bool:
  return any(fnmatch.fnmatchcase(name.rstrip("/"), pattern) for pattern in patterns)


def foreign_entries(model_dir: str) -> List[str]:
  """Names in `model_dir` (top level) that lag_tf did not write; [] for a missing dir."""
  try:
    if not tf.io.gfile.isdir(model_dir):
      return []
    names = tf.io.gfile.listdir(model_dir)
  except tf.errors.NotFoundError:
    return []
  return sorted(name.rstrip("/") for name in names if not _matches(name, _TRANSIENT))


def check_model_dir_owner(model_dir: str, allow_non_empty: bool = False) -> None:
  """Raises ForeignDirError unless `model_dir` is missing, empty, already a lag_tf run, or
  (with `allow_non_empty`) holds only files whose names lag_tf never writes."""
  try:
    if tf.io.gfile.exists(f"{model_dir.rstrip('/')}/config.gin"):
      return  # A lag_tf run (resume, or a config change handled by config_io).
  except tf.errors.OpError:
    return  # Unreadable: config_io.check_model_dir_writable reports it.
  entries = foreign_entries(model_dir)
  if not entries:
    return
  shown = ", ".join(entries[:3]) + (f" and {len(entries) - 3} more" if len(entries) > 3 else "")
  if not allow_non_empty:
    raise ForeignDirError(
        f"model dir {model_dir} is not empty and holds no lag_tf run (no config.gin): {shown}; "
        "use a new --model_dir, or pass --allow_non_empty to write beside these files")
  clashes = [name for name in entries if _matches(name, OWN_NAMES)]
  if clashes:
    raise ForeignDirError(
        f"model dir {model_dir} holds {', '.join(clashes)}, not written by lag_tf, which a run "
        "would write; move it away or use a new --model_dir (--allow_non_empty never touches "
        "files lag_tf did not write)")
