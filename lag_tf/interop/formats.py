"""Writes a `ModelState` in one of the export formats, never over an existing path.

Local outputs are written under a temporary name next to `out` and renamed into place, so a
failed export leaves nothing that looks finished.
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf

from lag_tf.growth.state import ModelState
from lag_tf.interop import keras_export
from lag_tf.models.config import TransformerConfig

FORMATS = ("keras", "saved_model", "keras_hub")


def check_exportable(config: TransformerConfig, fmt: str) -> None:
  """ValueError (one line) if `config` cannot be written as `fmt`; checked before any loading."""
  if fmt not in FORMATS:
    raise ValueError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
  if fmt == "keras_hub":
    from lag_tf.interop import keras_hub_io  # pylint: disable=g-import-not-at-top
    keras_hub_io.backbone_for(config)


def _write(state: ModelState, fmt: str, path: str) -> None:
  if fmt == "keras":
    keras_export.save_keras(state, path)
  elif fmt == "saved_model":
    keras_export.save_saved_model(state, path)
  else:
    from lag_tf.interop import keras_hub_io  # pylint: disable=g-import-not-at-top
    keras_hub_io.save_preset(state, path)


def write(state: ModelState, fmt: str, out: str) -> None:
  """Writes `state` to `out` as `fmt`; FileExistsError if `out` exists."""
  check_exportable(state.config, fmt)
  if tf.io.gfile.exists(out):
    raise FileExistsError(f"{out} already exists; not overwriting it")
  if "://" in out:  # Object stores: no rename; write in place.
    _write(state, fmt, out)
    return
  out = os.path.abspath(out)
  directory, name = os.path.split(out)
  os.makedirs(directory, exist_ok=True)
  stem, ext = os.path.splitext(name) if fmt == "keras" else (name, "")
  temporary = os.path.join(directory, f".{stem}.partial-{os.getpid()}{ext}")
  try:
    _write(state, fmt, temporary)
    if os.path.exists(out):
      raise FileExistsError(f"{out} appeared while exporting; not overwriting it")
    os.rename(temporary, out)
  finally:
    if os.path.isdir(temporary):
      shutil.rmtree(temporary)
    elif os.path.exists(temporary):
      os.remove(temporary)
