"""Whole-file writes that a kill -9 or a full disk cannot leave half done: every file lag_tf
writes whole (config.gin, decisions, summaries, growth.json, candidate.json, the metrics
repair, the run lock, token caches) goes through here, with one durability policy.

The policy, on a local file system: the bytes go to a temporary file next to the target, which
is flushed and fsynced, then renamed over the target (atomic on POSIX: a reader sees the old file
or the new one, never a cut one), then the directory is fsynced so the rename itself survives a
power loss. A failed write (ENOSPC, a kill) removes its temporary file and leaves the target as
it was; its OSError names the target (a failed `write` names no file by itself). `exclusive=True` never replaces an existing target (FileExistsError): the file is
linked into place, which fails atomically if another writer got there first (decisions, the
run lock). On object stores (gs://) a single-object write is already atomic; `exclusive` there
is a check then a write (object stores have no atomic create-if-absent through tf.io.gfile).
"""

from __future__ import annotations

import os
import uuid


def write_text(path: str, text: str, exclusive: bool = False) -> None:
  write_bytes(path, text.encode("utf-8"), exclusive=exclusive)


def write_bytes(path: str, data: bytes, exclusive: bool = False) -> None:
  if "://" in path:
    import tensorflow as tf  # Only object stores need it; keeps lag_tf.analysis TF-free.
    if exclusive and tf.io.gfile.exists(path):
      raise FileExistsError(f"{path} exists")
    with tf.io.gfile.GFile(path, "wb") as f:
      f.write(data)
    return
  directory = os.path.dirname(os.path.abspath(path))
  # Hidden, unique per writer: two processes never share one, and listings skip it.
  temporary = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
  try:
    with open(temporary, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    if exclusive:
      os.link(temporary, path)  # FileExistsError if the target exists; never replaces it.
    else:
      os.replace(temporary, path)
  except OSError as error:
    if error.filename is None:  # A failed write (ENOSPC) names no file: name the target.
      raise OSError(error.errno, error.strerror, path) from error
    raise
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)
  _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
  try:
    descriptor = os.open(directory, os.O_RDONLY)
  except OSError:
    return  # Some platforms cannot open a directory; the rename is still atomic.
  try:
    os.fsync(descriptor)
  except OSError:
    pass  # Not supported on this file system: durability as good as it offers.
  finally:
    os.close(descriptor)
