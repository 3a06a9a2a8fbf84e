"""lag_tf's floors: every import points down (or stays in its own package), read with ast.

A unit is a package under lag_tf/ (lag_tf.growth) or a module directly in it (lag_tf.plan). A
unit may import itself and the units on lower floors, never a peer on its own floor nor a
higher one; imports inside functions count too (a lazy import is still a dependency). A new
unit must be given a floor here. Above them all, the comparison suite (benchmarks/speedup/)
imports lag_tf's public modules, and lag_tf imports nothing of benchmarks/.
"""

import ast
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lowest first.
FLOORS = [
    # Files, records and console: no lag_tf imports at all.
    ["lag_tf", "lag_tf.atomic_file", "lag_tf.console", "lag_tf.records", "lag_tf.gin_registry"],
    # The model dir's layout, its files read and written as records.
    ["lag_tf.model_dir_store"],
    # A model dir's owner, lock and gin config files (config_io registers no configurables:
    # lag_tf.configurables does, on the top floor).
    ["lag_tf.dir_ownership", "lag_tf.run_lock", "lag_tf.config_io"],
    ["lag_tf.models", "lag_tf.data"],
    # Pure numpy operators on model states; the Keras adapter lives in training/.
    ["lag_tf.growth"],
    # The loop, optimizers, checkpoints, memory estimates, Keras <-> ModelState.
    ["lag_tf.training"],
    ["lag_tf.interop", "lag_tf.lag"],
    ["lag_tf.analysis"],
    ["lag_tf.experiments"],
    ["lag_tf.plan"],
    ["lag_tf.bindings", "lag_tf.dry_run", "lag_tf.configurables"],
    # Binaries.
    ["lag_tf.main", "lag_tf.analyze", "lag_tf.export"],
]


def _module_names(root, package="lag_tf"):
  """{dotted module name: path} of every .py file under root/<package>."""
  names = {}
  for directory, _, files in os.walk(os.path.join(root, package)):
    for name in files:
      if name.endswith(".py"):
        path = os.path.join(directory, name)
        parts = os.path.relpath(path, root)[:-3].split(os.sep)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
  return names


def _imported_modules(path, modules):
  """The lag_tf modules a file imports (`from lag_tf.x import y` is lag_tf.x.y if y is a
  module, else lag_tf.x)."""
  with open(path) as f:
    tree = ast.parse(f.read())
  found = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      found.add(node.module)
      found.update(f"{node.module}.{alias.name}" for alias in node.names
                   if f"{node.module}.{alias.name}" in modules)
  return {name for name in found if name in modules}


def _unit(module):
  return ".".join(module.split(".")[:2])


def import_problems(root):
  """'a -> b (file)' for every import that does not point down, and 'unplaced: x' for every
  unit without a floor."""
  floor = {unit: level for level, units in enumerate(FLOORS) for unit in units}
  modules = _module_names(root)
  problems = {f"unplaced: {_unit(m)}" for m in modules if _unit(m) not in floor}
  for module, path in sorted(modules.items()):
    source = _unit(module)
    for target in sorted(_imported_modules(path, modules)):
      if (_unit(target) != source and source in floor and _unit(target) in floor
          and floor[_unit(target)] >= floor[source]):
        problems.add(f"{source} -> {_unit(target)} ({os.path.relpath(path, root)})")
  return sorted(problems)


def test_every_import_points_down():
  assert import_problems(REPO) == []


def _closure(start, modules):
  """Every lag_tf module that importing `start` imports (parent packages included)."""
  seen, todo = set(), [start]
  while todo:
    module = todo.pop()
    if module in seen:
      continue
    seen.add(module)
    parts = module.split(".")
    todo += [".".join(parts[:i]) for i in range(1, len(parts))]
    todo += _imported_modules(modules[module], modules)
  return seen


def _registering(modules):
  """The modules that register a gin configurable."""
  registering = set()
  for module, path in modules.items():
    with open(path) as f:
      if re.search(r"\bgin(_registry)?\.(configurable|register|external_configurable)\b", f.read()):
        registering.add(module)
  return registering


def test_configurables_registers_every_configurable():
  modules = _module_names(REPO)
  registering = _registering(modules)
  assert len(registering) > 15
  missing = registering - _closure("lag_tf.configurables", modules)
  assert not missing


# ---- the comparison suite, above lag_tf ---------------------------------------------------------

def _imports(path):
  """(module, names) of every import in a file: `import a.b` is ('a.b', []), `from a import b,
  c` is ('a', ['b', 'c'])."""
  with open(path) as f:
    tree = ast.parse(f.read())
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      yield from ((alias.name, []) for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      yield node.module, [alias.name for alias in node.names]


def test_lag_tf_imports_nothing_of_benchmarks():
  found = [f"{module} ({os.path.relpath(path, REPO)})"
           for path in _module_names(REPO).values() for module, _ in _imports(path)
           if module.split(".")[0] == "benchmarks"]
  assert found == []


def test_the_suite_imports_only_lag_tfs_public_modules_and_names():
  lag_tf = _module_names(REPO)
  suite = _module_names(REPO, os.path.join("benchmarks", "speedup"))
  assert {"benchmarks.speedup.budget", "benchmarks.speedup.report"} <= set(suite)
  problems = []
  for path in suite.values():
    for module, names in _imports(path):
      if module.split(".")[0] != "lag_tf":
        continue
      private = [n for n in module.split(".") + names if n.startswith("_")]
      if module not in lag_tf or private:
        problems.append(f"{os.path.relpath(path, REPO)}: {module} {names}")
  assert problems == []


def test_the_suites_gin_files_register_its_configurables():
  """SpeedupSuite is not lag_tf's: the suite's run layer imports the module that registers it
  (gin's `import`), so lag_tf.main can parse every suite file."""
  suite = _module_names(REPO, os.path.join("benchmarks", "speedup"))
  with open(os.path.join(REPO, "gin", "runs", "speedup.gin")) as f:
    imported = set(re.findall(r"^import ([\w.]+)", f.read(), re.M))
  assert _registering(suite) == {"benchmarks.speedup.budget"} <= imported
