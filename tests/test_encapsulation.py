"""Outside lag_tf/training/, no module of lag_tf or benchmarks/ reads or writes another object's
private (`x._name`, `getattr(x, '_name')`): a Trainer's and its StepEngine's state enters and
leaves through their public methods (`load_state`, `start_from`, `model_state`, `global_step`,
`examples_seen`), and lag_tf's other modules expose what their users need. Read with ast;
`self` and `cls` are the object's own. (tests/test_engine.py checks that no public attribute of
a Trainer or StepEngine is a raw tf.Variable.)
"""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAINING = os.path.join("lag_tf", "training") + os.sep

# Third-party privates with no public equivalent, by file.
ALLOWED = {
    # keras-hub's TransformerEncoder/Decoder keep their sublayers only as private attributes.
    "lag_tf/interop/keras_hub_io.py": {
        "_self_attention_layer", "_self_attention_layer_norm", "_feedforward_layer_norm",
        "_query_dense", "_key_dense", "_value_dense", "_output_dense",
        "_feedforward_intermediate_dense", "_feedforward_output_dense"},
}


def _is_private(name):
  return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_accesses(path):
  """(line, text) of every private attribute reached on an object other than self/cls."""
  with open(path) as f:
    tree = ast.parse(f.read())
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Attribute) and _is_private(node.attr):
      if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
        found.append((node.lineno, node.attr, ast.unparse(node)))
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
          and node.func.id in ("getattr", "setattr", "hasattr", "delattr") and len(node.args) > 1
          and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
          and _is_private(node.args[1].value)):
      found.append((node.lineno, node.args[1].value, ast.unparse(node)))
  return found


def _outside_training():
  for top in ("lag_tf", "benchmarks"):
    for directory, _, files in os.walk(os.path.join(REPO, top)):
      for name in sorted(files):
        path = os.path.relpath(os.path.join(directory, name), REPO)
        if name.endswith(".py") and not path.startswith(TRAINING):
          yield path


def test_no_module_outside_training_touches_a_private():
  problems = []
  for path in _outside_training():
    allowed = ALLOWED.get(path.replace(os.sep, "/"), set())
    problems += [f"{path}:{line}: {text}" for line, attr, text
                 in private_accesses(os.path.join(REPO, path)) if attr not in allowed]
  assert problems == []


def test_the_allowlist_is_still_needed():
  for path, allowed in ALLOWED.items():
    used = {attr for _, attr, _ in private_accesses(os.path.join(REPO, path))}
    assert allowed <= used, (path, allowed - used)


def test_lag_tf_declares_its_configurables_through_its_own_registry():
  """gin is used through its public API: lag_tf's configurables are declared with
  gin_registry.configurable / register (which call gin's and keep the record the binaries read
  instead of gin's private registry), never with gin.configurable directly."""
  direct = []
  for root, _, files in os.walk(os.path.join(REPO, "lag_tf")):
    for name in files:
      path = os.path.join(root, name)
      if name.endswith(".py") and not path.endswith(os.path.join("lag_tf", "gin_registry.py")):
        with open(path) as f:
          tree = ast.parse(f.read())
        direct += [f"{os.path.relpath(path, REPO)}:{node.lineno}" for node in ast.walk(tree)
                   if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                   and node.value.id == "gin" and node.attr in (
                       "configurable", "register", "external_configurable")]
  assert not direct, direct
