"""Bindings that do nothing: the user's gin bindings compared with what the run uses.

gin silently ignores a binding for a parameter the experiment passes itself (e.g.
`Trainer.train_steps` in a LAG run, set from lag_experiment.base_steps; docs/design.md,
"Platform constraints", gin), and one for a configurable the experiment never calls. Scoped
bindings under a scope the run never enters are definitions it does not select (a pool file
declares every candidate; a run uses some) and are not reported. `record` notes where every
binding was written (file and line) while gin parses; `unused` compares them with gin's
operative config (gin_registry.operative_parameters) after the plan was built (lag_tf.plan),
plus what the plan says the run calls and overrides.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterable, List

from gin import config_parser

from lag_tf import gin_registry
from lag_tf.plan import ANY_PARAMETER, Plan


@dataclasses.dataclass(frozen=True)
class Binding:
  scope: str
  selector: str
  parameter: str
  file: str  # The gin file, or '--gin_bindings'.
  line: int

  @property
  def text(self) -> str:
    scope = f"{self.scope}/" if self.scope else ""
    return f"{scope}{self.selector}.{self.parameter}"

  @property
  def where(self) -> str:
    return self.file if self.file == "--gin_bindings" else f"{self.file}:{self.line}"


@contextlib.contextmanager
def record(into: List[Binding]):
  """While active, every binding statement gin parses is appended to `into` (macros excluded)."""
  original = config_parser.ConfigParser.parse_statement

  def parse_statement(parser):
    statement = original(parser)
    if isinstance(statement, config_parser.BindingStatement) and statement.arg_name:
      location = statement.location
      into.append(Binding(statement.scope, statement.selector, statement.arg_name,
                          location.filename or "--gin_bindings", location.line_num))
    return statement

  config_parser.ConfigParser.parse_statement = parse_statement
  try:
    yield into
  finally:
    config_parser.ConfigParser.parse_statement = original


def _in_scope(binding_scope: str, call_scope: str) -> bool:
  return set(filter(None, binding_scope.split("/"))) <= set(call_scope.split("/"))


def unused(bindings: Iterable[Binding], plan: Plan) -> List[str]:
  """One warning per binding without effect in this run: what it is, where, and why."""
  used = gin_registry.operative_parameters()
  calls = {name for name in plan.calls}
  warnings, seen = [], set()
  for binding in reversed(list(bindings)):  # The last binding of a parameter is the one used.
    configurable = gin_registry.match(binding.selector)
    if configurable is None or (binding.scope, configurable.name, binding.parameter) in seen:
      continue
    seen.add((binding.scope, configurable.name, binding.parameter))
    name = configurable.name
    reason = (plan.overrides.get((name, binding.parameter))
              or plan.overrides.get((name, ANY_PARAMETER)))
    scopes = [scope for scope, called in used if called == name]
    if reason:
      message = (f"{binding.text} has {reason}" if reason.startswith("no effect") else
                 f"{binding.text} is set by {reason} here")
    elif name in calls and not binding.scope:
      continue
    elif not any(_in_scope(binding.scope, scope) for scope in scopes):
      if binding.scope and not any(_in_scope(binding.scope, s) for s, _ in used):
        continue  # A scoped definition (e.g. a pool's candidate) this run does not select.
      where = f" in scope {binding.scope!r}" if binding.scope else ""
      message = (f"{binding.text} has no effect: {name} is never called{where} by "
                 f"run_experiment.kind={plan.kind!r}")
    elif not any(binding.parameter in used[(scope, name)] for scope in scopes
                 if _in_scope(binding.scope, scope)):
      message = f"{binding.text} has no effect: every call of {name} passes {binding.parameter}"
    else:
      continue
    warnings.append(f"{message} ({binding.where})")
  return list(reversed(warnings))
