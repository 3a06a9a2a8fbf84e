"""Decision records: `<model_dir>/decisions/stage-<i>.json`, committed once, never rewritten.

A commit is one atomic, exclusive write (lag_tf.atomic_file: temporary file, fsync, linked into
place only if no record exists), so a crash leaves either no record or a complete one. A restarted job that finds a record trusts
it and never probes that stage again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Optional

import tensorflow as tf

from lag_tf import atomic_file


class DecisionExistsError(RuntimeError):
  """A decision for this stage was already committed."""


def decision_path(model_dir: str, stage: int) -> str:
  return os.path.join(model_dir, "decisions", f"stage-{stage}.json")


def config_hash(config_text: str) -> str:
  return hashlib.sha256(config_text.encode("utf-8")).hexdigest()[:16]


def read_decision(model_dir: str, stage: int) -> Optional[dict]:
  path = decision_path(model_dir, stage)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path) as f:
    return json.load(f)


def commit_decision(model_dir: str, stage: int, record: dict) -> str:
  """Writes the record atomically; refuses to replace an existing one."""
  path = decision_path(model_dir, stage)
  if tf.io.gfile.exists(path):
    raise DecisionExistsError(f"{path} is already committed; decisions are never rewritten")
  record = dict(record, stage=stage, committed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime()))
  text = json.dumps(record, indent=2, sort_keys=True) + "\n"
  tf.io.gfile.makedirs(os.path.dirname(path))
  try:
    atomic_file.write_text(path, text, exclusive=True)
  except FileExistsError:
    raise DecisionExistsError(f"{path} is already committed; decisions are never rewritten") \
        from None
  return path
