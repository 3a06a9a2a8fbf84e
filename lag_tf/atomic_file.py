"""Whole-file writes that a kill -9 cannot leave half done.

The text goes to a temporary file next to the target, which is then renamed over it: rename is
atomic on POSIX file systems, so a reader (the resumed run) sees the old file or the new one,
never a cut one. On object stores (gs://) a single-object write is already atomic.
"""

from __future__ import annotations

import os


def write_text(path: str, text: str) -> None:
  if "://" in path:
    import tensorflow as tf  # Only object stores need it; keeps lag_tf.analysis TF-free.
    with tf.io.gfile.GFile(path, "w") as f:
      f.write(text)
    return
  temporary = f"{path}.tmp.{os.getpid()}"
  try:
    with open(temporary, "w", encoding="utf-8") as f:
      f.write(text)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)
