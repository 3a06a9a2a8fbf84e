"""Run-time resource failures (out of memory, a full disk) as one line that says what to do.

Both surface as TensorFlow's ResourceExhaustedError (an allocation, or a checkpoint / events
write that got ENOSPC) or as an OSError (Python's own writes: metrics lines, decisions). Every
write of a run is resumable (docs/usage.md "Reliability"), so the line ends with the last good
checkpoint: the rerun of the same command resumes there once the cause is fixed.
"""

from __future__ import annotations

import errno
import re

import tensorflow as tf

from lag_tf.training import checkpoints

RESOURCE_ERRORS = (tf.errors.ResourceExhaustedError, OSError)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _first_line(error: BaseException) -> str:
  text = str(getattr(error, "message", "") or error).strip()
  text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", text)
  return (text.splitlines() or [type(error).__name__])[0][:240]


def is_disk_full(error: BaseException) -> bool:
  if isinstance(error, OSError) and error.errno in _DISK_FULL:
    return True
  # Also when a writer re-raised it without its errno (the decision commit's did).
  return "No space left on device" in str(error) or "Disk quota exceeded" in str(error)


def describe(error: BaseException, model_dir: str) -> str:
  """One line for a resource failure of a run in `model_dir`."""
  try:
    last = checkpoints.newest_checkpoint(model_dir)
  except (tf.errors.OpError, OSError):
    last = None
  resume = (f"the last good checkpoint is {last}" if last else "no checkpoint was saved yet")
  if is_disk_full(error):
    return (f"the disk is full ({_first_line(error)}); free space and rerun the same command "
            f"to resume ({resume})")
  if isinstance(error, tf.errors.ResourceExhaustedError):
    shape = re.search(r"shape\s*\[[^\]]*\]", str(error))
    what = f"allocating a tensor of {shape.group(0)}" if shape else _first_line(error)
    return (f"out of memory at run time ({what}); lower Trainer.global_batch_size or "
            "TransformerConfig.max_len and rerun with --allow_config_change to resume, or "
            f"rerun unchanged on a larger device ({resume})")
  return f"{type(error).__name__}: {_first_line(error)} ({resume})"
