"""Preemption: SIGTERM asks the run to stop at the next loop boundary with a checkpoint.

Spot/preemptible VMs and Cloud TPU batch jobs send SIGTERM, then kill the process after a grace
period. The binary calls `install()`; a SIGTERM then only sets a flag. `Trainer.train` asks
`stop_requested(strategy)` after every loop (steps_per_loop steps): if yes it saves a checkpoint
at that step and raises `Preempted`, which the binary turns into EXIT_PREEMPTED. Rerunning the
same command resumes from that checkpoint, so the worst case loses nothing but the time to
finish the current loop.

Why not `tf.distribute.experimental.PreemptionCheckpointHandler`: docs/design.md,
"Preemption and crashes" (it restores its one checkpoint on creation, adds a counter variable
to it and registers coordination-service keys once per cluster). What it adds for multi-worker
jobs, every worker stopping at the same step (saving is a collective), is done here by
all-reducing the flag across workers (one scalar per loop) under MultiWorkerMirroredStrategy.
"""

from __future__ import annotations

import signal
import threading

import tensorflow as tf
from absl import logging

# 128 + SIGTERM, what a shell reports for a process killed by SIGTERM: schedulers that retry on
# "killed by the platform" treat it alike, and it differs from 0 (done), 1 (failed), 2 (input).
EXIT_PREEMPTED = 143


class Preempted(Exception):
  """Training stopped on SIGTERM after saving a checkpoint; rerun the same command to resume."""


_requested = threading.Event()
_installed = False


def install(force: bool = False) -> None:
  """Routes SIGTERM to the stop flag (main thread only; idempotent unless `force`).

  force: install again even if installed, e.g. after creating a MultiWorkerMirroredStrategy,
  whose runtime (the coordination service's SIGTERM preemption notifier) replaces the process'
  SIGTERM handler with its own.
  """
  global _installed
  if _installed and not force:
    return
  signal.signal(signal.SIGTERM, _on_sigterm)
  _installed = True


def _on_sigterm(signum, frame) -> None:
  del frame
  if not _requested.is_set():
    logging.warning("Signal %d: stopping at the end of the current loop with a checkpoint.",
                    signum)
  _requested.set()


def clear() -> None:
  _requested.clear()


def stop_requested(strategy: tf.distribute.Strategy) -> bool:
  """True if this process, or under multi-worker any worker, was asked to stop.

  Every worker calls this at the same loop boundary, so under MultiWorkerMirroredStrategy the
  all-reduce below is a matching collective and all workers stop (and save) together.
  """
  local = _requested.is_set()
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return local
  flag = tf.constant(1.0 if local else 0.0)
  per_replica = strategy.run(lambda: tf.identity(flag))
  return float(strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)) > 0
