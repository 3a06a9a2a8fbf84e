"""The records lag_tf writes as JSON, as types (docs/design.md, "Records", says what each holds).

`to_json()` gives the object written to the file (the same keys and layout as files written
before these types existed; JSON object keys are strings, so a curve's probe steps are too);
`from_json()` reads files of any lag_tf version: a field an older file lacks takes its default,
keys a newer file adds are ignored. Pure Python: lag_tf.analysis reads these without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, Dict, List, Optional


def as_float(value, default: float = math.nan) -> float:
  """A JSON number as lag_tf writes it: NaN/Inf are strings ('nan', 'inf'); null or anything
  unreadable is `default`."""
  if value is None:
    return default
  try:
    return float(value)
  except (TypeError, ValueError):
    return default


def config_hash(config_text: str) -> str:
  """A decision's `config_hash`: a short fingerprint of the gin config that made it."""
  return hashlib.sha256(config_text.encode("utf-8")).hexdigest()[:16]


def _losses(value) -> Dict[int, float]:
  if not isinstance(value, dict):
    return {}
  return {int(step): as_float(loss)
          for step, loss in sorted(value.items(), key=lambda kv: int(kv[0]))}


def _known(cls, data: dict) -> dict:
  names = {f.name for f in dataclasses.fields(cls)}
  return {k: v for k, v in data.items() if k in names}


class _Record:
  """A dataclass written as the JSON object of its fields and read back from any version's."""

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, data: Optional[dict]):
    return cls(**_known(cls, data or {}))


@dataclasses.dataclass
class CandidateOutcome(_Record):
  """One candidate in a decision record."""

  status: str = "ok"  # 'ok', 'eliminated' (successive halving) or 'failed'.
  eval_losses: Dict[int, float] = dataclasses.field(default_factory=dict)  # probe step -> loss
  score: Optional[float] = None  # What the rule ranked by (None: failed, or not scored).
  failed: Optional[str] = None  # Why it failed (e.g. 'training loss is nan at step 14').
  params: Optional[int] = None
  flops_per_token: Optional[float] = None
  probe_steps_trained: int = 0
  probe_flops: float = 0.0  # Its probe's training FLOPs.
  probe_evals: int = 0  # Evaluations its probe ran (0 in records before 2026-12).
  probe_eval_flops: float = 0.0  # Their FLOPs (forward passes): part of the decision's cost.
  left_race_at: Optional[int] = None  # Rule 'race': the probe step it was dropped at.
  function_preserving: Optional[bool] = None
  candidate: Dict[str, Any] = dataclasses.field(default_factory=dict)  # Its operators.
  config: Dict[str, Any] = dataclasses.field(default_factory=dict)  # Target TransformerConfig.

  def to_json(self) -> dict:
    data = super().to_json()
    data["eval_losses"] = {str(s): v for s, v in sorted(self.eval_losses.items())}
    return data

  @classmethod
  def from_json(cls, data: dict) -> "CandidateOutcome":
    fields = _known(cls, data)
    fields["eval_losses"] = _losses(data.get("eval_losses"))
    if fields.get("score") is not None:
      fields["score"] = as_float(fields["score"])
    fields["probe_steps_trained"] = int(fields.get("probe_steps_trained") or 0)
    fields["probe_flops"] = as_float(fields.get("probe_flops"), 0.0)
    fields["probe_eval_flops"] = as_float(fields.get("probe_eval_flops"), 0.0)
    fields["probe_evals"] = int(fields.get("probe_evals") or 0)
    return cls(**fields)

  def loss_at_or_before(self, step: Optional[int]) -> float:
    """The eval loss at `step`, else at the last eval before it (NaN if none)."""
    steps = [s for s in self.eval_losses if step is None or s <= step]
    return self.eval_losses[max(steps)] if steps else float("nan")


@dataclasses.dataclass
class DecisionRecord(_Record):
  """A stage's committed decision (`decisions/stage-<i>.json`)."""

  stage: int
  winner: Optional[str]
  rule: str = "?"
  ranking: List[str] = dataclasses.field(default_factory=list)
  tied_with: List[str] = dataclasses.field(default_factory=list)
  tie_broken_by_cost: bool = False
  score_steps: List[int] = dataclasses.field(default_factory=list)
  candidates: Dict[str, CandidateOutcome] = dataclasses.field(default_factory=dict)
  probe_steps: Optional[int] = None  # k.
  eval_steps: List[int] = dataclasses.field(default_factory=list)
  growth_step: Optional[int] = None
  growth_examples_seen: Optional[int] = None
  tokens_per_step: Optional[int] = None
  probe_cost_steps: int = 0
  probe_cost_flops: float = 0.0  # Every candidate's probe training FLOPs.
  probe_eval_flops: float = 0.0  # The evaluations the decision read (forward passes).
  probe_budget_flops: Optional[float] = None  # SelectorRule.probe_budget_share of the stage.
  race: Dict[str, Any] = dataclasses.field(default_factory=dict)  # Rule 'race': how it ran.
  config_hash: Optional[str] = None
  committed_at: Optional[str] = None  # Set by model_dir_store.commit_decision.

  def to_json(self) -> dict:
    data = super().to_json()
    data["candidates"] = {n: c.to_json() for n, c in self.candidates.items()}
    if self.committed_at is None:
      del data["committed_at"]
    return data

  @classmethod
  def from_json(cls, data: dict, stage: Optional[int] = None) -> "DecisionRecord":
    """`stage`: the stage its file name says, for records that do not carry one."""
    fields = _known(cls, data)
    fields.setdefault("stage", stage if stage is not None else 0)
    fields.setdefault("winner", None)
    candidates = data.get("candidates")
    fields["candidates"] = ({n: CandidateOutcome.from_json(c) for n, c in candidates.items()}
                            if isinstance(candidates, dict) else {})
    k = data.get("probe_steps")
    if isinstance(k, list):  # Some early records listed every rung's length.
      k = max(k) if k else None
    fields["probe_steps"] = int(k) if isinstance(k, (int, float)) else None
    fields["probe_cost_flops"] = as_float(fields.get("probe_cost_flops"), 0.0)
    fields["probe_eval_flops"] = as_float(fields.get("probe_eval_flops"), 0.0)
    return cls(**fields)

  @property
  def k(self) -> Optional[int]:
    """The probe length: the record's, else the largest probe step any candidate reached."""
    if self.probe_steps is not None:
      return self.probe_steps
    steps = [s for c in self.candidates.values() for s in c.eval_losses]
    return max(steps) if steps else None

  @property
  def probe_evals(self) -> int:
    return sum(c.probe_evals for c in self.candidates.values())

  @property
  def losing_probe_steps(self) -> int:
    return sum(c.probe_steps_trained for n, c in self.candidates.items() if n != self.winner)


@dataclasses.dataclass
class CandidateInfo(_Record):
  """`candidates/<name>/candidate.json`: what a probed candidate is."""

  name: Optional[str] = None
  params: Optional[int] = None
  flops_per_token: Optional[float] = None
  tokens_per_step: Optional[int] = None
  function_preserving: Optional[bool] = None
  growth_step: Optional[int] = None
  eval_tokens: Optional[int] = None  # Tokens of one evaluation (every held-out batch).
  candidate: Dict[str, Any] = dataclasses.field(default_factory=dict)
  config: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def flops_per_step(self) -> float:
    """flops_per_token * tokens_per_step; NaN if either is unknown."""
    value = as_float(self.flops_per_token) * as_float(self.tokens_per_step)
    return value if math.isfinite(value) else float("nan")


@dataclasses.dataclass
class GrowthRecord(_Record):
  """`growth.json` of a `grow` experiment: one candidate applied once."""

  candidate: str
  step: int
  function_preserving: Optional[bool] = None
  params_before: Optional[int] = None
  params_after: Optional[int] = None
  base_eval_loss: Optional[float] = None
  grown_eval_loss: Optional[float] = None
  base_config: Dict[str, Any] = dataclasses.field(default_factory=dict)
  grown_config: Dict[str, Any] = dataclasses.field(default_factory=dict)
  grown_checkpoint: Optional[str] = None
  operators: Dict[str, Any] = dataclasses.field(default_factory=dict)
  base_flops: Optional[float] = None  # The base model's training (the grown one trains none).


@dataclasses.dataclass(frozen=True)
class BaselineRecord(_Record):
  """`scratch/baseline.json` of a `lag` run's scratch baseline: what its verdict reads besides
  the two runs' evals."""

  steps: int
  seed_spread: float = 0.0  # lag_experiment.seed_spread: the comparison's seed-to-seed noise.


@dataclasses.dataclass(frozen=True)
class MetricsRow(_Record):
  """One line of a `metrics.jsonl` (lag_tf.training.metrics.MetricsLogger writes them): a
  training loop that ended at `step`, an evaluation at `step`, or both. A field the line lacks
  is None; NaN/Inf (written as strings) read back as floats."""

  step: int
  loss: Optional[float] = None  # Training loss of the loop that ended here (None: eval only).
  learning_rate: Optional[float] = None
  examples_seen: Optional[int] = None
  steps_per_second: Optional[float] = None  # This loop's rate (absent on a run's first loop).
  tokens_per_second: Optional[float] = None
  eval_loss: Optional[float] = None  # None: no evaluation at this step.
  eval_accuracy: Optional[float] = None
  eval_batch_losses: Optional[List[float]] = None  # Per held-out batch (None in older files).

  @classmethod
  def from_json(cls, data: dict) -> "MetricsRow":
    fields = _known(cls, data)
    for name in ("loss", "learning_rate", "steps_per_second", "tokens_per_second", "eval_loss",
                 "eval_accuracy"):
      if name in fields:
        fields[name] = as_float(fields[name])
    if fields.get("examples_seen") is not None:
      fields["examples_seen"] = int(fields["examples_seen"])
    batches = fields.get("eval_batch_losses")
    fields["eval_batch_losses"] = ([as_float(v) for v in batches]
                                   if isinstance(batches, list) else None)
    return cls(**fields)


def latest_per_step(rows: List[MetricsRow]) -> List[MetricsRow]:
  """One row per step, by step: the last written (a metrics.jsonl appended to by a resume that
  did not repair it first holds the steps it redid twice)."""
  by_step = {row.step: row for row in rows}
  return [by_step[step] for step in sorted(by_step)]
