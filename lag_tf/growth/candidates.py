"""Growth candidates and pools: what LAG probes, declared in gin and checked before training.

A `Candidate` applies a depth operator and then a width operator (either may be absent) with
one symmetry-breaking `noise_scale` and one optimizer-state policy:

* 'map': AdamW's moments follow the operators (see mapping.py for how; fresh weights get zero
  moments); the step counter is kept.
* 'reset': all moments are zero after growth; the step counter is kept, so learning-rate
  schedules continue (what stock AdamW's bias correction does to zero moments, as to fresh
  weights under 'map': docs/design.md, "Optimizer state after growth").

`validate_pool` dry-runs every candidate on the base config (shapes only, no weights) and
raises a one-line ValueError naming the first bad candidate; `apply_candidate` grows a state.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from lag_tf import gin_registry
from lag_tf.growth import depth as _depth  # noqa: F401  Registers the depth operators.
from lag_tf.growth import fusion as _fusion  # noqa: F401  Registers deep_fusion.
from lag_tf.growth import width as _width  # noqa: F401  Registers the width operators.
from lag_tf.growth.registry import GrowthOperator, get_operator
from lag_tf.growth.state import ModelState
from lag_tf.models.config import TransformerConfig

OPTIMIZER_STATE_POLICIES = ("map", "reset")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")  # Used as a directory name.


def _error(name, message) -> ValueError:
  return ValueError(f"growth candidate {name!r}: {message}")


@gin_registry.configurable(module="lag_tf.growth")
@dataclasses.dataclass(frozen=True)
class Candidate:
  """One growth strategy.

  name: unique within its pool; names the candidate's directory (letters, digits, _ . + -).
  depth / width: an operator, as gin reference (`@stack_layers`) or name ('stack_layers'),
    or None. Stored as the operator's name.
  depth_params / width_params: the operator's keyword arguments (not noise_scale).
  noise_scale: symmetry-breaking noise, relative to each perturbed tensor's std (0: none).
  optimizer_state: 'map' or 'reset' (module docstring).
  """

  name: str
  depth: Any = None
  depth_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  width: Any = None
  width_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  noise_scale: float = 0.0
  optimizer_state: str = "map"

  def __post_init__(self):
    # Only normalizes: errors come from `check` (called by validate_pool and apply_candidate),
    # which raises one-line errors; gin would append its call chain to errors raised here.
    for stage in ("depth", "width"):
      value, params = getattr(self, stage), getattr(self, f"{stage}_params")
      if value is not None and not isinstance(value, str):
        fn = getattr(value, "__wrapped__", value)  # gin passes a wrapper for `@operator`.
        object.__setattr__(self, stage, getattr(fn, "__name__", repr(fn)))
      if isinstance(params, Mapping):
        object.__setattr__(self, f"{stage}_params", dict(params))

  def check(self) -> None:
    """ValueError (one line, naming the candidate) for anything wrong without a model."""
    if not isinstance(self.name, str) or not _NAME.match(self.name):
      raise _error(self.name, "the name must be letters, digits, '_', '.', '+' or '-'")
    for stage in ("depth", "width"):
      value, params = getattr(self, stage), getattr(self, f"{stage}_params")
      if value is not None:
        try:
          op = get_operator(value)
        except ValueError as error:
          raise _error(self.name, error) from None
        if op.stage != stage:
          raise _error(self.name, f"{op.name} is a {op.stage} operator, given as {stage}")
      if not isinstance(params, Mapping):
        raise _error(self.name, f"{stage}_params must be a dict, got {params!r}")
      if value is None and params:
        raise _error(self.name, f"{stage}_params given without a {stage} operator")
    if self.depth is None and self.width is None:
      raise _error(self.name, "grows nothing (no depth and no width operator)")
    if not isinstance(self.noise_scale, (int, float)) or self.noise_scale < 0:
      raise _error(self.name, f"noise_scale={self.noise_scale!r} must be >= 0")
    if self.optimizer_state not in OPTIMIZER_STATE_POLICIES:
      raise _error(self.name, f"optimizer_state={self.optimizer_state!r}, expected one of "
                   f"{OPTIMIZER_STATE_POLICIES}")

  @property
  def operators(self) -> List[Tuple[GrowthOperator, Dict[str, Any]]]:
    """The (operator, params) pairs in the order they apply: depth, then width."""
    return [(get_operator(getattr(self, stage)), getattr(self, f"{stage}_params"))
            for stage in ("depth", "width") if getattr(self, stage) is not None]

  @property
  def function_preserving(self) -> bool:
    """Whether the grown model computes exactly the small model's logits (noise included)."""
    return all(op.function_preserving for op, _ in self.operators)

  @property
  def needs_second_model(self) -> bool:
    return any(op.needs_second_model for op, _ in self.operators)

  def to_dict(self) -> Dict[str, Any]:
    """A JSON-ready record (for decision files)."""
    return dict(dataclasses.asdict(self), function_preserving=self.function_preserving)


@gin_registry.configurable(module="lag_tf.growth")
@dataclasses.dataclass(frozen=True)
class Pool:
  """The candidates LAG probes, in order."""

  candidates: Sequence[Candidate]
  name: str = "pool"

  def __post_init__(self):
    object.__setattr__(self, "candidates", tuple(self.candidates))

  @property
  def names(self) -> List[str]:
    return [candidate.name for candidate in self.candidates]

  def __len__(self) -> int:
    return len(self.candidates)

  def __iter__(self) -> Iterator[Candidate]:
    return iter(self.candidates)

  def __getitem__(self, name: str) -> Candidate:
    for candidate in self.candidates:
      if candidate.name == name:
        return candidate
    raise KeyError(f"growth pool {self.name!r} has no candidate {name!r}; it has {self.names}")


def target_config(candidate: Candidate, config: TransformerConfig,
                  second_config: Optional[TransformerConfig] = None) -> TransformerConfig:
  """The config `candidate` grows `config` into, from shapes alone; ValueError names it."""
  candidate.check()
  base = config
  for op, params in candidate.operators:
    try:
      op.check_kind(config)
      op.check_params(params)
      if op.needs_second_model:
        if second_config is None:
          raise ValueError(f"{op.name} needs a second trained model and none is given")
        if second_config != base:
          diff = {k: v for k, v in second_config.to_dict().items() if base.to_dict()[k] != v}
          raise ValueError(f"{op.name}: the second model differs from the base model in {diff}")
      config = op.target_config(config, **params)
    except ValueError as error:
      raise _error(candidate.name, error) from None
  return config


def validate_pool(pool: Pool, base_config: TransformerConfig,
                  second_config: Optional[TransformerConfig] = None
                  ) -> Dict[str, TransformerConfig]:
  """Checks a pool before any training; returns each candidate's grown config by name.

  Fails (one-line ValueError naming the candidate) on: an empty pool, duplicate names, an
  operator that does not fit the model kind, unknown or missing operator parameters, an
  impossible target shape or out-of-range layer index, Deep Fusion without (or with a
  mismatched) second model, and candidates growing to different configs (LAG compares
  candidates of one target size).
  """
  if not isinstance(pool, Pool) or not pool.candidates:
    raise ValueError(f"growth pool {getattr(pool, 'name', pool)!r} has no candidates")
  for candidate in pool:
    if not isinstance(candidate, Candidate):
      raise ValueError(f"growth pool {pool.name!r}: {candidate!r} is not a Candidate")
  seen = set()
  for name in pool.names:
    if name in seen:
      raise _error(name, f"duplicate candidate name in pool {pool.name!r}")
    seen.add(name)
  targets = {}
  for candidate in pool:
    grown = target_config(candidate, base_config, second_config)
    if targets and grown != next(iter(targets.values())):
      first = next(iter(targets))
      raise _error(candidate.name, f"grows to {_shape(grown)} but {first!r} grows to "
                   f"{_shape(targets[first])}")
    targets[candidate.name] = grown
  return targets


def pool_targets(pool: Pool, base_config: TransformerConfig,
                 where: str = "") -> Dict[str, TransformerConfig]:
  """`validate_pool` as a run checks its pool: its error says where ('stage 2: invalid growth
  pool: ...'), so a run and its dry run refuse a pool with the same line."""
  try:
    return validate_pool(pool, base_config)
  except ValueError as error:
    raise ValueError(f"{where}invalid growth pool: {error}") from None


def _shape(config: TransformerConfig) -> str:
  return (f"{config.num_layers} layers, d_model {config.d_model}, {config.num_heads} heads of "
          f"{config.key_dim}, d_ff {config.d_ff}")


def apply_candidate(candidate: Candidate, state: ModelState, rng: np.random.Generator,
                    second_state: Optional[ModelState] = None) -> ModelState:
  """Grows `state` with the candidate's operators and optimizer-state policy.

  second_state: the second trained model, for Deep Fusion only. Under a depth operator it is
  grown by the same depth operator first, so both fused models have the target depth.
  """
  expected = target_config(candidate, state.config,
                           None if second_state is None else second_state.config)
  reset = candidate.optimizer_state == "reset"
  had_moments, step = state.has_optimizer_state, state.optimizer_step
  if reset:  # No need to carry moments through the operators only to zero them.
    state = state.without_optimizer_state()
    second_state = None if second_state is None else second_state.without_optimizer_state()
  try:
    for op, params in candidate.operators:
      kwargs = dict(params, noise_scale=candidate.noise_scale)
      if op.needs_second_model:
        kwargs["other"] = second_state
      _, state = op.fn(state.config, state, rng, **kwargs)
      if op.stage == "depth" and second_state is not None:
        _, second_state = op.fn(second_state.config, second_state, rng, **kwargs)
  except ValueError as error:
    raise _error(candidate.name, error) from None
  if state.config != expected:
    raise AssertionError(f"growth candidate {candidate.name!r}: grew to {state.config}, "
                         f"target_config said {expected}")
  if reset and had_moments:
    state = state.with_zero_optimizer_state(step)
  return state
