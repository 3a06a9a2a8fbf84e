"""lag_tf's own record of its gin configurables, and what a run used, through gin's public API.

Every lag_tf configurable is declared with `configurable` (or `register`) from this module
instead of `gin.configurable`: gin registers it as before, and this module keeps its full name
and the undecorated class or function. The binaries use that to suggest a name for a typo, list
a configurable's parameters, and match the selectors a gin file or gin's operative config
writes (`growth.Pool`, `Trainer`) to a configurable, without reading gin's private registry.
What a run used comes from `gin.operative_config_str()`, parsed by gin's own parser.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Callable, Dict, List, Optional, Set, Tuple

import gin
from gin import config_parser


@dataclasses.dataclass(frozen=True)
class Configurable:
  name: str        # What gin calls it: the class or function name, or the name given.
  module: str      # gin's module: the one given, else the Python module.
  wrapped: object  # The class or function before gin decorated it.

  @property
  def full_name(self) -> str:
    return f"{self.module}.{self.name}"

  def parameters(self) -> List[str]:
    target = self.wrapped.__init__ if inspect.isclass(self.wrapped) else self.wrapped
    try:
      return [n for n in inspect.signature(target).parameters if n != "self"]
    except (TypeError, ValueError):
      return []


# Filled at import time by the decorators below, like gin's own registry (full name -> entry).
_CONFIGURABLES: Dict[str, Configurable] = {}


def _record(obj, name: Optional[str], module: Optional[str]) -> None:
  entry = Configurable(name or obj.__name__, module or obj.__module__, obj)
  _CONFIGURABLES[entry.full_name] = entry


def configurable(name_or_fn=None, *, module: Optional[str] = None, allowlist=None,
                 denylist=None):
  """`gin.configurable`, recorded here: `@configurable`, `@configurable(module=...)`,
  `@configurable("name")`, `@configurable(denylist=[...])`."""
  options = {k: v for k, v in (("module", module), ("allowlist", allowlist),
                               ("denylist", denylist)) if v is not None}
  name = name_or_fn if isinstance(name_or_fn, str) else None

  def decorate(obj):
    _record(obj, name, module)
    return gin.configurable(name, **options)(obj) if name else gin.configurable(**options)(obj)
  return decorate(name_or_fn) if callable(name_or_fn) and name is None else decorate


def register(fn: Callable, *, module: Optional[str] = None):
  """`gin.register` (gin knows `fn` without decorating the caller's name), recorded here."""
  _record(fn, None, module)
  return gin.register(fn, module=module) if module else gin.register(fn)


def all_configurables() -> List[Configurable]:
  return sorted(_CONFIGURABLES.values(), key=lambda c: c.full_name)


def known_names() -> List[str]:
  """Every name a selector may use for a recorded configurable: its name and its full name."""
  return sorted({n for c in _CONFIGURABLES.values() for n in (c.name, c.full_name)})


def match(selector: str) -> Optional[Configurable]:
  """The configurable a gin selector names (`Trainer`, `growth.Pool`, `lag_tf.growth.Pool`):
  the one whose full name ends with it; None when no lag_tf configurable or several do."""
  found = [c for name, c in _CONFIGURABLES.items()
           if name == selector or name.endswith("." + selector)]
  return found[0] if len(found) == 1 else None


class _Placeholders(config_parser.ParserDelegate):
  """Values are not needed to know which parameters were bound: references and macros parse
  to placeholders instead of being looked up."""

  def configurable_reference(self, scoped_configurable_name, evaluate):
    return None

  def macro(self, macro_name):
    return None


def operative_parameters() -> Dict[Tuple[str, str], Set[str]]:
  """(scope, configurable's name) -> the parameters gin supplied to it in at least one call so
  far (gin.operative_config_str; only lag_tf's configurables)."""
  used: Dict[Tuple[str, str], Set[str]] = {}
  parser = config_parser.ConfigParser(gin.operative_config_str(), _Placeholders())
  for statement in parser:
    if not isinstance(statement, config_parser.BindingStatement) or not statement.arg_name:
      continue
    found = match(statement.selector)
    if found is not None:
      used.setdefault((statement.scope, found.name), set()).add(statement.arg_name)
  return used
