"""The comparison suite's records of its runs, as types, and where they live.

`python -m benchmarks.speedup` runs each method and seed in a lag_tf model dir and keeps, beside
it, its record of the run (`RunInfo`: method, seed, kind, experiment, the equal-compute plan,
bindings, finished, wall seconds) and the run's output:

  <suite_dir>/<method>/seed-<s>/       the run's model dir (lag_tf.model_dir_store's layout)
  <suite_dir>/<method>/seed-<s>.json   its RunInfo, rewritten after every attempt
  <suite_dir>/<method>/seed-<s>.log    its output

`runs.export_results` writes a finished run's compact record (`RunRecord`: the RunInfo,
the depth it ends with, its charged eval curve and its decision records), small enough to
commit, to <results_dir>/runs/<method>/seed-<s>.json; docs/results.md is generated from those.

`to_json()` gives the object written to the file, byte for byte as files written before these
types existed; `from_json()` reads them. Pure Python (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import List, Optional, Tuple

from lag_tf import atomic_file
from lag_tf.model_dir_store import read_json
from lag_tf.records import DecisionRecord

_RUN = "seed-{}"  # A run's name in its method's dir: its model dir, + .json its record.


@dataclasses.dataclass(frozen=True)
class StageRecord:
  """One model of a method's plan (budget.StageBudget as written: the record is read without
  TensorFlow, which budget imports through lag_tf.lag)."""

  layers: int
  steps: int
  flops_per_step: float
  overhead_flops: float = 0.0  # The losing candidates' probes spent choosing this model.


@dataclasses.dataclass(frozen=True)
class PlanRecord:
  """A method's equal-compute plan (budget.MethodPlan.to_dict())."""

  method: str
  phases: List[StageRecord]
  probe_steps: int
  budget_flops: float
  total_flops: float
  overhead_flops: float

  def to_json(self) -> dict:
    return dict(dataclasses.asdict(self), phases=[dataclasses.asdict(p) for p in self.phases])

  @classmethod
  def from_json(cls, data: dict) -> "PlanRecord":
    return cls(**dict(data, phases=[StageRecord(**p) for p in data["phases"]]))


@dataclasses.dataclass(frozen=True)
class RunInfo:
  """The suite's record of one run (`<method>/seed-<s>.json`)."""

  method: str
  seed: int
  kind: str
  experiment: str  # What lag_tf.main ran: 'train' (scratch), 'gradual' or 'lag'.
  plan: PlanRecord
  bindings: List[str]
  finished: bool = False
  wall_seconds: Optional[float] = None  # Over every attempt (None: none has ended yet).

  def to_json(self) -> dict:
    data = dict(dataclasses.asdict(self), plan=self.plan.to_json())
    if self.wall_seconds is None:
      del data["wall_seconds"]
    return data

  @classmethod
  def from_json(cls, data: dict) -> "RunInfo":
    return cls(**dict(data, plan=PlanRecord.from_json(data["plan"])))


@dataclasses.dataclass(frozen=True)
class RunRecord:
  """A finished run's compact record, to commit (`runs/<method>/seed-<s>.json`)."""

  run: RunInfo
  layers: int  # Depth of the model it ends with.
  curve: List[Tuple[float, float]]  # Charged eval curve: (training FLOPs, eval loss).
  decisions: List[DecisionRecord]  # Per growth, its stage's decision.

  @property
  def total_flops(self) -> float:
    return self.curve[-1][0]

  @property
  def final_loss(self) -> float:
    return self.curve[-1][1]

  @property
  def winners(self) -> List[Optional[str]]:
    return [decision.winner for decision in self.decisions]

  def to_json(self) -> dict:
    return {"run": self.run.to_json(), "layers": self.layers,
            "curve": [[flops, loss] for flops, loss in self.curve],
            "decisions": [decision.to_json() for decision in self.decisions]}

  @classmethod
  def from_json(cls, data: dict) -> "RunRecord":
    return cls(run=RunInfo.from_json(data["run"]), layers=data["layers"],
               curve=[(flops, loss) for flops, loss in data["curve"]],
               decisions=[DecisionRecord.from_json(d) for d in data["decisions"]])


# --- Where they are. ----------------------------------------------------------------------------

def run_dir(method_dir: str, seed) -> str:
  """The model dir of a method's run of `seed`."""
  return os.path.join(method_dir, _RUN.format(seed))


def info_path(model_dir: str) -> str:
  """The suite's record of the run in `model_dir`."""
  return model_dir.rstrip("/") + ".json"


def log_path(model_dir: str) -> str:
  """The output of the run in `model_dir`."""
  return model_dir.rstrip("/") + ".log"


def started_runs(method_dir: str) -> List[str]:
  """The run dirs of a method's dir whose record exists (the run started), in name order."""
  if not os.path.isdir(method_dir):
    return []
  prefix, suffix = _RUN.split("{}")[0], info_path("")
  return [os.path.join(method_dir, name[:-len(suffix)])
          for name in sorted(os.listdir(method_dir))
          if name.startswith(prefix) and name.endswith(suffix)]


def _runs_dir(results_dir: str) -> str:
  return os.path.join(results_dir, "runs")


def record_path(results_dir: str, method: str, seed) -> str:
  """Where a run's compact record is committed."""
  return os.path.join(_runs_dir(results_dir), method, info_path(_RUN.format(seed)))


# --- Read and written. --------------------------------------------------------------------------

def read_info(model_dir: str) -> Optional[RunInfo]:
  """The suite's record of the run; None if it has not started."""
  data = read_json(info_path(model_dir))
  return None if data is None else RunInfo.from_json(data)


def write_info(model_dir: str, info: RunInfo) -> None:
  """Written atomically (the suite updates it after every attempt)."""
  os.makedirs(os.path.dirname(info_path(model_dir)), exist_ok=True)
  atomic_file.write_text(info_path(model_dir), json.dumps(info.to_json(), indent=2,
                                                         sort_keys=True))


def write_record(results_dir: str, record: RunRecord) -> str:
  """Writes the compact record where `read_records` finds it; returns its path."""
  path = record_path(results_dir, record.run.method, record.run.seed)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  atomic_file.write_text(path, json.dumps(record.to_json(), indent=1, sort_keys=True))
  return path


def read_records(results_dir: str) -> List[RunRecord]:
  """Every compact record under <results_dir>/runs, by method and file name."""
  records = []
  runs_dir = _runs_dir(results_dir)
  for method in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []:
    for name in sorted(os.listdir(os.path.join(runs_dir, method))):
      with open(os.path.join(runs_dir, method, name)) as f:
        records.append(RunRecord.from_json(json.load(f)))
  return records
