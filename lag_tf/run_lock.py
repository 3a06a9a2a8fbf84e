"""One run per model dir: `<model_dir>/run.lock` holds the pid, host and start time of the
process that owns the dir.

Two processes writing one model dir would interleave metrics, race on checkpoints and commit two
different decisions for one stage, so a second process refuses to start. A lock left behind by
a process that died (kill -9, OOM, a crashed VM) must not block the rerun that resumes it: a lock
whose pid no longer exists on this host is stale and taken over. A lock from another host cannot
be checked (no way to signal a remote pid): it is refused, and the message says which file to
remove once that host is known to be gone.

Local dirs: the lock file is written completely to a private temporary file and then hard-linked
into place; `link` fails if the name exists, so acquiring is atomic and the lock file is never
seen half-written. gs:// (and other object stores) have no atomic create-if-absent through
tf.io.gfile: there it is best effort (check, then write).
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Optional

import tensorflow as tf

from lag_tf import atomic_file

LOCK_NAME = "run.lock"


class LockHeldError(RuntimeError):
  """Another live process holds the model dir; the message is one line."""


def lock_path(model_dir: str) -> str:
  return os.path.join(model_dir, LOCK_NAME)


def read_lock(model_dir: str) -> Optional[dict]:
  """The lock's owner, {} for an unreadable lock file, None if there is no lock."""
  path = lock_path(model_dir)
  try:
    with tf.io.gfile.GFile(path) as f:
      text = f.read()
  except tf.errors.NotFoundError:
    return None
  try:
    owner = json.loads(text)
    return owner if isinstance(owner, dict) else {}
  except ValueError:
    return {}


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:  # Alive, owned by another user.
    return True
  return True


def is_stale(owner: dict) -> bool:
  """True if the owner is a process of this host that no longer runs (or is us: a pid reused
  after a crash). Locks of other hosts are never judged stale."""
  if owner.get("host") != socket.gethostname():
    return False
  try:
    pid = int(owner["pid"])
  except (KeyError, TypeError, ValueError):
    return False
  return pid == os.getpid() or not _pid_alive(pid)


def describe_owner(model_dir: str, owner: dict) -> str:
  if not owner:
    return (f"model dir {model_dir} is locked by an unreadable {lock_path(model_dir)}; remove "
            "it if no other run uses this dir")
  return (f"model dir {model_dir} is in use by pid {owner.get('pid')} on host "
          f"{owner.get('host')} (since {owner.get('started')}); wait for it to finish, or "
          f"remove {lock_path(model_dir)} if that process is gone")


class RunLock:
  """acquire() or LockHeldError; release() removes the lock only if it is still ours."""

  def __init__(self, model_dir: str):
    self.model_dir = model_dir
    self.path = lock_path(model_dir)
    self.owner = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    self.held = False

  def acquire(self) -> "RunLock":
    for _ in range(3):  # A stale lock is removed, then the create is retried.
      if self._try_create():
        self.held = True
        return self
      owner = read_lock(self.model_dir)
      if owner is None:  # Released between our create and our read: try again.
        continue
      if not is_stale(owner):
        raise LockHeldError(describe_owner(self.model_dir, owner))
      try:
        tf.io.gfile.remove(self.path)
      except tf.errors.NotFoundError:
        pass
    raise LockHeldError(f"could not lock model dir {self.model_dir}: {self.path} keeps "
                        "reappearing (another run is starting in this dir)")

  def _try_create(self) -> bool:
    try:  # Exclusive: exactly one of two racing runs creates it.
      atomic_file.write_text(self.path, json.dumps(self.owner) + "\n", exclusive=True)
      return True
    except FileExistsError:
      return False

  def release(self) -> None:
    if not self.held:
      return
    self.held = False
    owner = read_lock(self.model_dir)
    if owner and owner.get("pid") == self.owner["pid"] and owner.get("host") == self.owner["host"]:
      try:
        tf.io.gfile.remove(self.path)
      except tf.errors.NotFoundError:
        pass

  def __enter__(self) -> "RunLock":
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
