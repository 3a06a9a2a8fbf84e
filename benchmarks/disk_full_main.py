"""`python -m lag_tf.main` whose disk fills up right before a chosen write (for faults.py).

  LAG_TF_DISK_FULL=<kind>:<n>:<mount> python benchmarks/disk_full_main.py <lag_tf.main flags>

`mount` is a small tmpfs holding the model dir. Right before the n-th checkpoint save
(kind `checkpoint`), the n-th decision commit (`decision`), or the n-th metrics line whose
append needs a new page of the file (`metrics`; tmpfs allocates whole pages, so only such an
append can fail), a filler file takes every free byte of the mount. The write then
fails with the file system's own ENOSPC, in TensorFlow's C++ writers or in Python alike; nothing
else is faked. The faults benchmark deletes the filler ("frees space") and reruns.
"""

from __future__ import annotations

import errno
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

PAGE = 4096


def fill(mount: str) -> None:
  """Takes every free byte of `mount` with `<mount>/filler`."""
  with open(os.path.join(mount, "filler"), "ab", buffering=0) as f:
    for chunk in (1 << 20, PAGE, 1):
      try:
        while True:
          f.write(b"\0" * chunk)
      except OSError as error:
        if error.errno != errno.ENOSPC:
          raise
  print(f"disk_full_main: filled {mount}", file=sys.stderr, flush=True)


def install(kind: str, nth: int, mount: str) -> None:
  """Wraps the write of `kind` so the disk is full when the n-th one happens."""
  import tensorflow as tf
  from lag_tf import model_dir_store
  from lag_tf.training import metrics

  calls = {"n": 0}

  def due() -> bool:
    calls["n"] += 1
    return calls["n"] >= nth and not os.path.exists(os.path.join(mount, "filler"))

  if kind == "checkpoint":
    save = tf.train.CheckpointManager.save

    def full_save(self, *args, **kwargs):
      if due():
        fill(mount)
      return save(self, *args, **kwargs)
    tf.train.CheckpointManager.save = full_save
  elif kind == "decision":
    commit = model_dir_store.commit_decision

    def full_commit(*args, **kwargs):
      if due():
        fill(mount)
      return commit(*args, **kwargs)
    model_dir_store.commit_decision = full_commit
  elif kind == "metrics":
    write = metrics.MetricsLogger.write

    def full_write(self, step, values):
      if self.enabled:
        record = {"step": int(step)}
        record.update({k: metrics.json_value(v) for k, v in values.items()})
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        needs_page = size % PAGE + len(json.dumps(record) + "\n") > PAGE or size == 0
        if needs_page and due():
          fill(mount)
      return write(self, step, values)
    metrics.MetricsLogger.write = full_write
  else:
    raise ValueError(f"unknown disk-full kind {kind!r}")


def main() -> None:
  kind, nth, mount = os.environ["LAG_TF_DISK_FULL"].split(":", 2)
  install(kind, int(nth), mount)
  from lag_tf import main as lag_tf_main
  sys.argv[0] = "lag_tf.main"
  lag_tf_main.run()


if __name__ == "__main__":
  main()
