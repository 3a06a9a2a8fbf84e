"""The registry of growth operators: what each one is, so pools can be checked before training.

Every operator is a pure function `op(config, state, rng, **params) -> (config, state)` and is
registered here with its stage ('depth' or 'width'), whether it is function-preserving (the
grown model computes exactly the small model's logits, for every valid parameter setting), the
model kinds it fits, whether it needs a second trained model (Deep Fusion), and a shape-only
`target_config(config, **params)` that raises ValueError for an impossible target. Operators are
also registered with gin (module 'lag_tf.growth'), so a pool can name them as `@stack_layers`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Dict, Tuple

from lag_tf import gin_registry
from lag_tf.models.config import MODEL_KINDS, TransformerConfig

STAGES = ("depth", "width")
# Parameters an operator receives from the candidate rather than from the pool's params.
CANDIDATE_SUPPLIED = ("noise_scale", "other")


@dataclasses.dataclass(frozen=True)
class GrowthOperator:
  name: str
  fn: Callable
  stage: str
  function_preserving: bool
  target_config: Callable[..., TransformerConfig]
  model_kinds: Tuple[str, ...] = MODEL_KINDS
  needs_second_model: bool = False

  def check_params(self, params: Dict) -> None:
    """ValueError for a parameter the operator does not take or a missing required one."""
    for key in params:
      if key in CANDIDATE_SUPPLIED:
        raise ValueError(f"{self.name}: {key!r} is set by the candidate, not in its params")
    signature = inspect.signature(self.fn)
    supplied = {"other": None} if self.needs_second_model else {}
    try:
      signature.bind(None, None, None, **params, **supplied)
    except TypeError as error:
      raise ValueError(f"{self.name}: {error}") from None

  def check_kind(self, config: TransformerConfig) -> None:
    if config.kind not in self.model_kinds:
      raise ValueError(f"{self.name} fits {'/'.join(self.model_kinds)} models, not a "
                       f"{config.kind}")


_OPERATORS: Dict[str, GrowthOperator] = {}


def growth_operator(stage: str, function_preserving: bool,
                    target_config: Callable[..., TransformerConfig],
                    model_kinds: Tuple[str, ...] = MODEL_KINDS,
                    needs_second_model: bool = False, register_with_gin: bool = True):
  """Decorator: registers an operator (here and with gin) and tags the function with its spec."""
  if stage not in STAGES:
    raise ValueError(f"growth_operator: stage={stage!r}, expected one of {STAGES}")

  def register(fn):
    spec = GrowthOperator(fn.__name__, fn, stage, bool(function_preserving), target_config,
                          tuple(model_kinds), needs_second_model)
    if fn.__name__ in _OPERATORS and _OPERATORS[fn.__name__].fn is not fn:
      raise ValueError(f"growth operator {fn.__name__!r} is registered twice")
    _OPERATORS[fn.__name__] = spec
    fn.growth_operator = spec
    fn.function_preserving = spec.function_preserving
    if register_with_gin:
      gin_registry.register(fn, module="lag_tf.growth")
    return fn

  return register


def unregister(name: str) -> None:
  """Removes an operator from this registry (tests register throwaway operators)."""
  _OPERATORS.pop(name, None)


def get_operator(name_or_fn) -> GrowthOperator:
  """Looks an operator up by name, by function, or by the callable gin passes for `@name`."""
  if isinstance(name_or_fn, GrowthOperator):
    return name_or_fn
  if isinstance(name_or_fn, str):
    name = name_or_fn.rsplit(".", 1)[-1]
  else:
    # gin hands over a wrapper of the registered function; functools.wraps keeps the original.
    fn = getattr(name_or_fn, "__wrapped__", name_or_fn)
    name = getattr(fn, "__name__", repr(fn))
  if name not in _OPERATORS:
    raise ValueError(f"unknown growth operator {name!r}; known: {sorted(_OPERATORS)}")
  return _OPERATORS[name]


def operators(stage: str = None) -> Dict[str, GrowthOperator]:
  return {name: op for name, op in sorted(_OPERATORS.items())
          if stage is None or op.stage == stage}
