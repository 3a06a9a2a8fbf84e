"""The model dir's layout (docs/design.md, "The model dir") and its record files: the one module
that knows where lag_tf keeps what, and reads and writes those files as the typed records of
lag_tf.records.

`TOP_LEVEL_NAMES` lists every name lag_tf writes at a model dir's top level, these and the ones
other modules write there (config files, the run lock, TensorBoard events); lag_tf.dir_ownership
tells lag_tf's files from a user's by it.

A *stage dir* holds one stage's candidates: the model dir for stage 0, stage-<i>/ after. Every
run dir (the model dir, a candidate dir, grown/, scratch/) holds its own metrics.jsonl and ckpt/.
Local paths use the os module; gs:// and other URLs go through tf.io.gfile, imported only then,
so lag_tf.analysis reads model dirs without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from typing import Dict, List, Optional, Tuple

from lag_tf import atomic_file
from lag_tf.records import (BaselineRecord, CandidateInfo, DecisionRecord, GrowthRecord,
                            MetricsRow)

_DECISION_FILE = re.compile(r"^stage-(\d+)\.json$")
_SEED_DIR = re.compile(r"^seed-(.+)$")


class DecisionExistsError(RuntimeError):
  """A decision for this stage was already committed."""


class ModelDirError(ValueError):
  """A record file of the model dir exists but cannot be read; the message is one line."""


# --- Files: os for local paths, tf.io.gfile for URLs (imported only then). ----------------------

def _gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile


def _is_url(path: str) -> bool:
  return "://" in path


def is_dir(path: str) -> bool:
  return _gfile().isdir(path) if _is_url(path) else os.path.isdir(path)


def exists(path: str) -> bool:
  return _gfile().exists(path) if _is_url(path) else os.path.exists(path)


def list_dir(path: str) -> List[str]:
  """The sorted names in a directory (none if it is absent)."""
  if not is_dir(path):
    return []
  names = _gfile().listdir(path) if _is_url(path) else os.listdir(path)
  return sorted(name.rstrip("/") for name in names)


def read_text(path: str) -> str:
  if _is_url(path):
    with _gfile().GFile(path) as f:
      return f.read()
  with open(path, encoding="utf-8") as f:
    return f.read()


def unused_name(path: str, infix: str = "") -> str:
  """The first `<path>.<infix><n>` (n = 1, 2, ...) that does not exist: where an old config.gin
  or a metrics.jsonl about to be repaired is kept."""
  number = 1
  while exists(f"{path}.{infix}{number}"):
    number += 1
  return f"{path}.{infix}{number}"


def _makedirs(path: str) -> None:
  if _is_url(path):
    _gfile().makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def read_json(path: str) -> Optional[dict]:
  """A JSON object, or None if the file is absent or not (yet) valid JSON."""
  if not exists(path):
    return None
  try:
    value = json.loads(read_text(path))
  except ValueError:
    return None
  return value if isinstance(value, dict) else None


def _write_json(path: str, data: dict, exclusive: bool = False) -> None:
  _makedirs(os.path.dirname(path))
  atomic_file.write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str),
                         exclusive=exclusive)


# --- Where things are. --------------------------------------------------------------------------

# Every name lag_tf writes at the top level of a model dir (glob patterns): the paths below (a
# test checks each of them is here) and the files other modules write beside them.
TOP_LEVEL_NAMES = (
    "metrics.jsonl", "ckpt", "summary.md", "candidates", "seed-*", "stage-*", "decisions",
    "growth.json", "grown", "scratch", "report",
    "metrics.jsonl.*",  # MetricsLogger's copy of a file it repaired (metrics.jsonl.orig-<n>).
    "events.out.tfevents.*",  # MetricsLogger's TensorBoard events.
    "config.gin", "config.gin.*", "operative_config.gin",  # config_io (config.gin.<n>: an old one).
    "run.lock")  # run_lock.


def stage_dir(model_dir: str, stage: int) -> str:
  """Where stage `stage`'s candidates live: the model dir for stage 0, stage-<i>/ after."""
  return model_dir if stage == 0 else os.path.join(model_dir, f"stage-{stage}")


def seed_dir(model_dir: str, seed) -> str:
  """A study's dir of one seed (its candidates/ beside the other seeds')."""
  return os.path.join(model_dir, f"seed-{seed}")


def candidates_dir(directory: str) -> str:
  """The candidates/ of a stage dir or a seed dir."""
  return os.path.join(directory, "candidates")


def candidate_dir(directory: str, name: str) -> str:
  """Candidate `name`'s dir in a stage dir or a seed dir."""
  return os.path.join(candidates_dir(directory), name)


def checkpoint_dir(run_dir: str) -> str:
  return os.path.join(run_dir, "ckpt")


def metrics_path(run_dir: str) -> str:
  return os.path.join(run_dir, "metrics.jsonl")


def summary_path(model_dir: str) -> str:
  return os.path.join(model_dir, "summary.md")


def report_dir(model_dir: str) -> str:
  """What lag_tf.analyze writes: report.md and its plots."""
  return os.path.join(model_dir, "report")


def grown_dir(model_dir: str) -> str:
  """A `grow` run's grown model."""
  return os.path.join(model_dir, "grown")


def scratch_dir(model_dir: str) -> str:
  """A `lag` run's scratch baseline."""
  return os.path.join(model_dir, "scratch")


def baseline_path(model_dir: str) -> str:
  return os.path.join(scratch_dir(model_dir), "baseline.json")


def decision_path(model_dir: str, stage: int) -> str:
  return os.path.join(model_dir, "decisions", f"stage-{stage}.json")


def growth_path(model_dir: str) -> str:
  return os.path.join(model_dir, "growth.json")


def candidate_info_path(candidate: str) -> str:
  return os.path.join(candidate, "candidate.json")


def failed_marker_path(candidate: str) -> str:
  return os.path.join(candidate, "failed.txt")


def seed_dirs(model_dir: str) -> Dict[str, str]:
  """A study's seed dirs by seed label, in name order."""
  found = {}
  for name in list_dir(model_dir):
    match = _SEED_DIR.match(name)
    if match:
      found[match.group(1)] = os.path.join(model_dir, name)
  return found


def candidate_names(directory: str) -> List[str]:
  """The names under a stage or seed dir's candidates/ (none if it has no candidates/)."""
  return list_dir(candidates_dir(directory))


# --- Decisions: committed once, never rewritten. ------------------------------------------------

def committed_stages(model_dir: str) -> List[int]:
  """The stages with a committed decision, ascending."""
  matches = (_DECISION_FILE.match(name) for name in list_dir(os.path.dirname(
      decision_path(model_dir, 0))))
  return sorted(int(m.group(1)) for m in matches if m)


def read_decision(model_dir: str, stage: int) -> Optional[DecisionRecord]:
  """Stage `stage`'s committed decision; None if there is none, ModelDirError if unreadable
  (a commit is atomic, so an unreadable record was damaged after it was written)."""
  path = decision_path(model_dir, stage)
  if not exists(path):
    return None
  data = read_json(path)
  if data is None:
    raise ModelDirError(f"{path} is not a JSON decision record (damaged after its commit?)")
  # The file name says which stage it is.
  return dataclasses.replace(DecisionRecord.from_json(data, stage), stage=stage)


def read_decisions(model_dir: str) -> List[DecisionRecord]:
  """Every committed decision, by stage."""
  return [read_decision(model_dir, stage) for stage in committed_stages(model_dir)]


def commit_decision(model_dir: str, record: DecisionRecord) -> str:
  """Writes `record` as its stage's decision, stamped with the time, in one atomic exclusive
  write (a crash leaves no record or a whole one); DecisionExistsError if the stage has one.
  Returns the path."""
  path = decision_path(model_dir, record.stage)
  refused = f"{path} is already committed; decisions are never rewritten"
  if exists(path):
    raise DecisionExistsError(refused)
  stamped = dataclasses.replace(
      record, committed_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
  text = json.dumps(stamped.to_json(), indent=2, sort_keys=True) + "\n"
  _makedirs(os.path.dirname(path))
  try:
    atomic_file.write_text(path, text, exclusive=True)
  except FileExistsError:  # Another writer committed between the check and the link.
    raise DecisionExistsError(refused) from None
  return path


# --- Candidates. --------------------------------------------------------------------------------

def read_candidate_info(candidate: str) -> Optional[CandidateInfo]:
  """A candidate dir's candidate.json; None if it has none (yet)."""
  data = read_json(candidate_info_path(candidate))
  return None if data is None else CandidateInfo.from_json(data)


def write_candidate_info(candidate: str, info: CandidateInfo) -> None:
  _write_json(candidate_info_path(candidate), info.to_json())


def read_failure(candidate: str) -> Optional[str]:
  """Why the candidate failed, if its dir holds a failed marker (None: it has not failed)."""
  path = failed_marker_path(candidate)
  if not exists(path):
    return None
  return read_text(path).strip() or "failed (no reason recorded)"


def mark_failed(candidate: str, reason: str) -> None:
  """Records that the candidate failed, so a restarted job neither retries nor selects it.
  Atomic: an empty marker left by a kill would read as "not failed" on restart."""
  atomic_file.write_text(failed_marker_path(candidate), reason + "\n")


# --- metrics.jsonl: appended by lag_tf.training.metrics.MetricsLogger. ---------------------------

METRICS_LINE_START = '{"step": '  # How every line the logger appends begins.


def parse_metrics(text: str) -> Tuple[List[dict], bool, int]:
  """A metrics.jsonl's text as (its records, whether its last line is cut, how many other lines
  are not records). A record is a JSON object with an integer "step". A process killed
  mid-append leaves a cut last line: a prefix of a record, never valid JSON. A last record
  without its newline is whole, but the file counts as cut: it must be rewritten before the
  next append."""
  lines = text.splitlines()
  records, cut, foreign = [], False, 0
  for index, line in enumerate(lines):
    if not line.strip():
      continue
    try:
      value = json.loads(line)
    except ValueError:
      value = None
    if isinstance(value, dict) and isinstance(value.get("step"), int):
      records.append(value)
    elif value is None and index == len(lines) - 1 and not text.endswith("\n") and (
        line.startswith(METRICS_LINE_START) or METRICS_LINE_START.startswith(line)):
      cut = True
    else:
      foreign += 1
  cut = cut or (bool(text) and not text.endswith("\n"))
  return records, cut, foreign


def read_metrics(path: str) -> List[MetricsRow]:
  """Every record of a metrics.jsonl as written, in file order (an absent file has none). A cut
  last line (a run killed mid-append) and lines that are not lag_tf records are skipped; a
  resume rewrites the file without them (MetricsLogger.truncate_after). Analysis that wants one
  row per step takes `records.latest_per_step` of these."""
  if not exists(path):
    return []
  return [MetricsRow.from_json(record) for record in parse_metrics(read_text(path))[0]]


def read_baseline(model_dir: str) -> Optional[BaselineRecord]:
  """A `lag` run's scratch/baseline.json; None if it has none."""
  data = read_json(baseline_path(model_dir))
  return None if data is None else BaselineRecord.from_json(data)


def write_baseline(model_dir: str, record: BaselineRecord) -> None:
  _write_json(baseline_path(model_dir), record.to_json())


# --- A `grow` run. ------------------------------------------------------------------------------

def read_growth(model_dir: str) -> Optional[GrowthRecord]:
  """A `grow` run's growth.json; None if the model dir has none."""
  data = read_json(growth_path(model_dir))
  return None if data is None else GrowthRecord.from_json(data)


def write_growth(model_dir: str, record: GrowthRecord) -> None:
  _write_json(growth_path(model_dir), record.to_json())
