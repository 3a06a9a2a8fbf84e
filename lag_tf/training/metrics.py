"""Where numbers go: `metrics.jsonl` (one JSON object per logged step), TensorBoard scalars,
and a progress line with steps/s and tokens/s. lag_tf.model_dir_store reads the file back
(`read_metrics`, as typed rows).

Only the chief writes files; other workers get a logger that only prints nothing.
"""

from __future__ import annotations

import json
import math
import time
from typing import Dict, Optional

import tensorflow as tf
from absl import logging

from lag_tf import atomic_file
from lag_tf import model_dir_store as store
from lag_tf.training import progress


class MetricsLogger:
  """Appends step records to `<directory>/metrics.jsonl` and TensorBoard events.

  On resume from step s, records after s (written after the last checkpoint, so about to be
  recomputed) are dropped first, so each step appears once. That repair drops only lag_tf's own
  records and a cut last line; a file with any other line (not a lag_tf record) is first copied
  to `metrics.jsonl.orig-<n>` beside it, so no line lag_tf did not write is ever lost.
  """

  def __init__(self, directory: str, enabled: bool = True, name: str = "",
               run_progress: Optional[progress.RunProgress] = None):
    self.directory = directory
    self.run_progress = run_progress or progress.RunProgress()
    self.enabled = enabled
    self.name = name
    self.path = store.metrics_path(directory)
    self._writer = tf.summary.create_file_writer(directory) if enabled else None
    self._last_time: Optional[float] = None
    self._last_step: Optional[int] = None

  def truncate_after(self, step: int) -> None:
    if not self.enabled or not tf.io.gfile.exists(self.path):
      return
    records, cut, foreign = store.parse_metrics(store.read_text(self.path))
    kept = [r for r in records if r["step"] <= step]
    if len(kept) == len(records) and not cut and not foreign:
      return
    if foreign:
      copy = store.unused_name(self.path, "orig-")
      tf.io.gfile.copy(self.path, copy)
      logging.warning("%s holds %d lines that are not lag_tf records; kept the original as %s "
                      "before repairing it.", self.path, foreign, copy)
    # Rewritten whole (atomically), so a kill here leaves the old file or the new one.
    atomic_file.write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
    logging.info("Dropped %d metric records after step %d (not checkpointed).",
                 len(records) - len(kept), step)

  def write(self, step: int, values: Dict[str, float]) -> None:
    if not self.enabled:
      return
    record = {"step": int(step)}  # First: store.METRICS_LINE_START tells a cut line by it.
    record.update({k: json_value(v) for k, v in values.items()})
    with tf.io.gfile.GFile(self.path, "a") as f:
      f.write(json.dumps(record) + "\n")
    with self._writer.as_default(step=int(step)):
      for key, value in values.items():
        if isinstance(value, (int, float)) and math.isfinite(value):
          tf.summary.scalar(key, value)
    self._writer.flush()

  def progress(self, step: int, total_steps: int, loss: float, learning_rate: float,
               tokens_per_step: int) -> Dict[str, float]:
    """Logs one progress line; returns the rates for the metrics record.

    The line names the phase (`RunProgress.phase`, else this logger's name) and ends with the
    phase's ETA and, when lag_tf.main planned the run, the whole run's.
    """
    now = time.perf_counter()
    rates = {}
    if self._last_time is not None and step > self._last_step:
      steps_per_second = (step - self._last_step) / (now - self._last_time)
      rates = {"steps_per_second": steps_per_second,
               "tokens_per_second": steps_per_second * tokens_per_step}
    self._last_time, self._last_step = now, step
    label = self.run_progress.label or self.name
    line = f"{label + ' ' if label else ''}step {step}/{total_steps} loss {loss:.4f} " \
           f"lr {learning_rate:.2e}"
    if rates:
      remaining = (total_steps - step) / rates["steps_per_second"]
      line += (f" | {rates['steps_per_second']:.2f} steps/s "
               f"{rates['tokens_per_second']:,.0f} tokens/s | eta "
               f"{progress.format_seconds(remaining)}")
      run_eta = self.run_progress.eta_seconds()
      done = self.run_progress.done_fraction()
      if run_eta is not None:
        line += f", run {progress.format_seconds(run_eta)} ({done:.0%} done)"
    logging.info(line)
    return rates

  def close(self) -> None:
    """Flushes and closes the TensorBoard writer (the logger writes nothing after this)."""
    if self._writer is not None:
      self._writer.close()
    self.enabled = False

  def reset_clock(self, step: int) -> None:
    """Evals and checkpoints are not training time: restart the rate clock after them (the
    run's clock, lag_tf.training.progress, keeps running)."""
    self._last_time, self._last_step = time.perf_counter(), step


def json_value(value):
  """A metric as metrics.jsonl stores it: tensors and arrays as Python values, NaN/Inf as
  strings."""
  if hasattr(value, "numpy"):
    value = value.numpy()
  if hasattr(value, "tolist"):
    value = value.tolist()
  if isinstance(value, float) and not math.isfinite(value):
    return str(value)  # JSON has no NaN/Inf; keep them visible as strings.
  return value
