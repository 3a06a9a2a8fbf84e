"""Gin parsing with clear errors, and the config files of a model dir.

Gin reports a problem as a multi-line message or a chain through configurables; the binary
turns it into one line that names the file, the line and (for a typo) the closest known name.
`gin.tf` is not used (it is broken on TF >= 2.16): config.gin and operative_config.gin are
written here. Parsing needs the configurables registered: import lag_tf.configurables first
(this module stays on the bottom floor and imports none of them).
"""

from __future__ import annotations

import difflib
import logging
import importlib.util  # noqa: F401  gin reads files through importlib.util without importing it.
import os
import re
import socket
from typing import Iterable, Optional, Sequence

import gin
import tensorflow as tf

from lag_tf import atomic_file
from lag_tf import gin_registry
from lag_tf.console import one_line
from lag_tf import model_dir_store as store

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")


class ConfigError(ValueError):
  """Bad gin files, bindings or model dir; the message is one line."""


def resolve_gin_file(path: str, search_paths: Sequence[str]) -> str:
  candidates = [path] + [os.path.join(directory, path) for directory in search_paths]
  for candidate in candidates:
    if os.path.isfile(candidate):
      return candidate
  raise ConfigError(f"gin file not found: {path} (searched the working directory and "
                    f"{', '.join(search_paths)})")


def _explain(error: Exception) -> str:
  message = one_line(str(error))
  match = re.search(r"not NoneType .*include '(([^'/]+)/[^']*)'", message)
  if match:
    # gin looks an include up as a Python package first; a directory of that name on sys.path
    # (the working directory under `python -m`) without __init__.py breaks its lookup.
    return (f"{match.group(2)}/ on the Python path (the working directory?) hides gin's "
            f"include '{match.group(1)}' (gin reads includes as package resources first): run "
            f"from another directory or rename {match.group(2)}/")
  match = re.search(r"No configurable matching '([^']+)'", message)
  if match:
    close = difflib.get_close_matches(match.group(1), gin_registry.known_names(), n=1,
                                      cutoff=0.5)
    if close:
      message += f" (did you mean '{close[0]}'?)"
  match = re.search(r"Configurable '([^']+)' doesn't have a parameter named '([^']+)'", message)
  if match:
    found = gin_registry.match(match.group(1))
    close = difflib.get_close_matches(match.group(2), found.parameters() if found else [], n=1,
                                      cutoff=0.5)
    if close:
      message += f" (did you mean '{match.group(1)}.{close[0]}'?)"
  return message


def _quiet_gin_resource_lookup(record: logging.LogRecord) -> bool:
  return not (record.pathname.endswith("resource_reader.py")
              and record.getMessage().startswith("Path not found"))


def parse(gin_files: Iterable[str], bindings: Iterable[str],
          search_paths: Sequence[str] = ()) -> None:
  """Replaces the gin config with these files then bindings (finalized: required macros must
  be set); the shipped gin/ dir is always searched (last)."""
  gin.clear_config()
  search_paths = list(search_paths) + [GIN_DIR]
  for directory in search_paths:
    gin.add_config_file_search_path(directory)
  files = [resolve_gin_file(path, search_paths) for path in gin_files]
  # gin first looks for every include as a Python package resource and logs "ERROR Path not
  # found" before finding it in the search path: noise that reads like a failure.
  logging.getLogger().addFilter(_quiet_gin_resource_lookup)
  try:
    gin.parse_config_files_and_bindings(files, list(bindings), finalize_config=True)
  except (ValueError, KeyError, SyntaxError, IOError, TypeError) as error:
    raise ConfigError(_explain(error)) from None


def has_config(model_dir: str) -> bool:
  try:
    return tf.io.gfile.exists(os.path.join(model_dir, "config.gin"))
  except tf.errors.OpError:
    return False


def discard_unused_config(model_dir: str) -> None:
  """Removes config.gin if the dir holds no results yet (no metrics.jsonl, no ckpt/): what a
  run that stopped on bad input before training wrote."""
  if any(tf.io.gfile.exists(path) for path in (store.metrics_path(model_dir),
                                               store.checkpoint_dir(model_dir))):
    return
  try:
    tf.io.gfile.remove(os.path.join(model_dir, "config.gin"))
  except tf.errors.OpError:
    pass


def check_model_dir_writable(model_dir: str) -> None:
  """Creates the model dir and checks a file can be written in it (ConfigError if not)."""
  try:
    tf.io.gfile.makedirs(model_dir)
    # Unique per process: every worker of a multi-worker job checks the same dir at once.
    probe = os.path.join(model_dir, f".write_probe.{socket.gethostname()}.{os.getpid()}")
    with tf.io.gfile.GFile(probe, "w") as f:
      f.write("ok")
    tf.io.gfile.remove(probe)
  except (tf.errors.OpError, OSError) as error:
    raise ConfigError(f"model dir {model_dir} cannot be written: {one_line(error)}") from None


def read_config(model_dir: str) -> Optional[str]:
  """The model dir's config.gin, None if it has none."""
  path = os.path.join(model_dir, "config.gin")
  return store.read_text(path) if store.exists(path) else None


def same_config(model_dir: str, previous: str, allow_config_change: bool) -> bool:
  """Whether gin's config is `previous` (the model dir's config.gin). A different one is refused
  (its results would be mixed with a different experiment's) unless `allow_config_change`."""
  if previous == gin.config_str():
    return True
  if not allow_config_change:
    raise ConfigError(
        f"{model_dir} holds a run with a different config.gin; use a new --model_dir, or pass "
        "--allow_config_change to resume it with the new config (the old file is kept)")
  return False


def write_config(model_dir: str, allow_config_change: bool) -> None:
  """Writes config.gin into the (checked) model dir, refusing to mix two configs in one dir
  (`same_config`); with `allow_config_change` a different old file is kept as config.gin.<n>
  before the new one is written. Nothing is deleted.
  """
  path = os.path.join(model_dir, "config.gin")
  previous = read_config(model_dir)
  if previous is not None:
    if same_config(model_dir, previous, allow_config_change):
      return
    tf.io.gfile.rename(path, store.unused_name(path))
  # Atomic: a cut config.gin would make the rerun refuse the dir as "a different config".
  atomic_file.write_text(path, gin.config_str())


def write_operative_config(model_dir: str) -> None:
  """The bindings actually used by this run (gin.operative_config_str)."""
  try:
    atomic_file.write_text(os.path.join(model_dir, "operative_config.gin"),
                           gin.operative_config_str())
  except (tf.errors.OpError, OSError):
    pass  # The model dir was already checked; nothing useful to add to the real error.
