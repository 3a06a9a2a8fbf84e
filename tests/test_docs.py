"""docs/usage.md and docs/design.md say what the code is: every flag of every binary is
documented (and every documented flag exists), the configurable reference lists every
configurable with its real defaults, the growth operators with their real kind and
preservation, and the design's module table and layers name every unit of lag_tf."""

import ast
import dataclasses
import inspect
import os
import re

import gin
import pytest

from doc_fixtures import DESIGN, REPO, USAGE, read, section
from lag_tf import gin_registry

# The binaries' own flags, read from their sources (absl binaries defining the same flag names
# cannot be imported into one process), and the usage section that documents them.
BINARIES = [("lag_tf/main.py", "The binaries"), ("lag_tf/analyze.py", "The binaries"),
            ("lag_tf/export.py", "The binaries"), ("launch/multi_worker.py", "Launching"),
            ("launch/cloud_tpu.py", "Launching"),
            ("benchmarks/speedup/__main__.py", "The comparison suite")]


def _defined_flags(path):
  source = read(path)
  return (set(re.findall(r"flags\.DEFINE_\w+\(\s*\"(\w+)\"", source)) |
          set(re.findall(r"add_argument\(\s*\"--(\w+)\"", source)))


@pytest.mark.parametrize("path, heading", BINARIES, ids=[b[0] for b in BINARIES])
def test_every_flag_of_every_binary_is_documented(path, heading):
  flags = _defined_flags(path)
  assert flags, path
  text = section(read(USAGE), heading)
  missing = sorted(f for f in flags if not re.search(rf"`[^`\n]*--{f}\b", text))
  assert not missing, f"{path}: flags not in docs/usage.md '{heading}': {missing}"


def test_every_flag_in_a_flag_table_exists():
  known = set().union(*(_defined_flags(path) for path, _ in BINARIES)) | {"v"}
  text = read(USAGE)
  tables = [m.start() for m in re.finditer(r"^\| flag \|", text, re.M)]
  assert len(tables) >= 3
  documented = {re.match(r"`-{1,2}(\w+)", row[0]).group(1)
                for start in tables for row in _table_rows(text[start:], "| flag |")}
  assert documented <= known, sorted(documented - known)


# ---- the configurable reference -----------------------------------------------------------------

def _table_rows(text, header):
  """The rows (lists of cells) of the markdown table whose header line starts with `header`."""
  lines = text[text.index(header):].split("\n\n")[0].splitlines()[2:]
  return [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in lines]


def _registered():
  from lag_tf import configurables  # noqa: F401  Registers every configurable.
  import benchmarks.speedup.budget  # noqa: F401  SpeedupSuite: the suite's gin files import it.
  return {c.full_name: c for c in gin_registry.all_configurables()}


def _parameters(fn):
  """{name: default} of a configurable's parameters (inspect.Parameter.empty: required)."""
  signature = inspect.signature(fn)
  fields = {f.name: f for f in dataclasses.fields(fn)} if dataclasses.is_dataclass(fn) else {}
  found = {}
  for name, parameter in signature.parameters.items():
    default = parameter.default
    if name in fields and fields[name].default_factory is not dataclasses.MISSING:
      default = fields[name].default_factory()
    if default is gin.REQUIRED:
      default = inspect.Parameter.empty
    found[name] = default
  return found


def _check_cell(name, fn, cell):
  parameters = _parameters(fn)
  for item in re.findall(r"`([^`]+)`", cell):
    key, _, value = item.partition("=")
    assert key in parameters, f"{name}: no parameter {key!r}"
    if value:
      assert parameters[key] == ast.literal_eval(value), (name, key, parameters[key])
    else:
      assert parameters[key] is inspect.Parameter.empty, f"{name}.{key} has a default"


def test_the_configurable_reference_is_the_code():
  registered = _registered()
  text = section(read(USAGE), "Gin configurables")
  rows = _table_rows(text, "| configurable |")
  documented = set()
  for name, cell, _ in rows:
    name = name.strip("`")
    configurable = gin_registry.match(name)
    assert configurable is not None, name
    documented.add(configurable.full_name)
    _check_cell(name, configurable.wrapped, cell)

  from lag_tf.growth import registry
  operators = registry.operators()
  listed = set()
  for name, kind, preserving, cell in _table_rows(text, "| operator |"):
    name = name.strip("`")
    op = operators[name]
    listed.add(name)
    assert (op.stage, op.function_preserving) == (kind, preserving == "yes"), name
    if op.needs_second_model:
      assert "second trained model" in cell, name
    else:
      _check_cell(name, op.fn, cell)
  assert listed == set(operators)
  # Every configurable is in one of the tables, but gin's own and those without parameters.
  operator_selectors = {f"lag_tf.growth.{name}" for name in operators}
  rest = {s for s, c in registered.items() if s not in operator_selectors and set(_parameters(c.wrapped)) - {
              "strategy", "model_dir", "run_progress"}}
  assert rest <= documented, sorted(rest - documented)


# ---- the design ---------------------------------------------------------------------------------

def _units():
  """lag_tf's packages (lag_tf/x/) and top-level modules (lag_tf/x.py)."""
  root = os.path.join(REPO, "lag_tf")
  return ({f"lag_tf/{d}/" for d in os.listdir(root)
           if os.path.isfile(os.path.join(root, d, "__init__.py"))} |
          {f"lag_tf/{f}" for f in os.listdir(root) if f.endswith(".py") and f != "__init__.py"})


def test_the_design_module_table_names_every_unit_and_only_real_paths():
  text = section(read(DESIGN), "Modules")
  named = set(re.findall(r"`([\w/]+(?:\.py|/))`", text))
  assert _units() <= named, sorted(_units() - named)
  for path in named:  # Those under a top-level directory (the gin row names gin/'s own).
    if path.split("/")[0] in os.listdir(REPO):
      assert os.path.exists(os.path.join(REPO, path)), path


def test_the_design_layers_list_every_unit_once():
  text = section(read(DESIGN), "Layers")
  listed = re.findall(r"`(lag_tf(?:\.\w+)?)`", text[:text.index("\n\n", text.index("1. "))])
  units = {u.rstrip("/").replace("/", ".").removesuffix(".py") for u in _units()}
  assert sorted(listed) == sorted(units)
