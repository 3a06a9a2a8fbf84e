"""BUILD tells the truth: it is what tools/build_file.py derives from the imports, and it has
no dependency cycle. The derivation itself is checked on a small fake repository."""

# build_file: strings are not data

import os
import shutil
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))

import build_file  # noqa: E402


def test_build_matches_the_imports_and_has_no_cycle():
  ok, problems = build_file.check(REPO)
  assert ok, problems


def test_check_command_passes_on_this_repository():
  result = subprocess.run([sys.executable, os.path.join(REPO, "tools", "build_file.py"),
                           "--check"], capture_output=True, text=True)
  assert result.returncode == 0, result.stderr


def _write(root, path, text=""):
  full = os.path.join(root, path)
  os.makedirs(os.path.dirname(full), exist_ok=True)
  with open(full, "w") as f:
    f.write(text)


@pytest.fixture
def fake_repo(tmp_path):
  root = str(tmp_path)
  _write(root, "lag_tf/__init__.py")
  _write(root, "lag_tf/pkg/__init__.py", "from lag_tf.pkg.a import A\n")
  _write(root, "lag_tf/pkg/a.py", "import numpy\nA = 1\n")
  _write(root, "lag_tf/pkg/b.py", "from lag_tf.pkg import A\n")  # A name: the package.
  _write(root, "lag_tf/c.py", "def f():\n  from lag_tf.pkg import a, b\n")  # Modules.
  _write(root, "lag_tf/main.py", "import lag_tf.c\nif __name__ == '__main__':\n  pass\n")
  _write(root, "benchmarks/__init__.py")
  _write(root, "benchmarks/suite/__init__.py")
  _write(root, "benchmarks/suite/plans.py", "from lag_tf.pkg import a\n")
  _write(root, "benchmarks/suite/__main__.py",
         "from benchmarks.suite import plans\nif __name__ == '__main__':\n  pass\n")
  _write(root, "tests/fixtures.py", "")
  _write(root, "tests/test_main.py",
         "from fixtures import x\nCOMMAND = ['-m', 'lag_tf.main']\nGIN = 'gin/a.gin'\n"
         "DOC = 'docs/usage.md'\n")
  _write(root, "tests/test_suite.py",
         "from benchmarks.suite import plans\nCOMMAND = ['-m', 'benchmarks.suite']\n")
  return root


def test_derives_targets_deps_and_data(fake_repo):
  targets = build_file.build_targets(fake_repo)
  assert targets["lag_tf_pkg_b"].deps == {"lag_tf_pkg_pkg"}
  assert targets["lag_tf_c"].deps == {"lag_tf_pkg_a", "lag_tf_pkg_b"}  # Inside a function too.
  assert targets["lag_tf_pkg_a"].deps == set()  # Third-party imports are not targets.
  assert targets["lag_tf_main"].kind == "py_binary"
  assert targets["lag_tf_main"].deps == {"lag_tf_c"}
  test = targets["test_main"]
  assert test.kind == "py_test"
  assert test.deps == {"test_support"}
  # It runs lag_tf.main (data, not a dep) and reads gin files and the docs.
  assert test.data == {":lag_tf_main", ":gin_files", ":docs"}
  # A package under benchmarks/: a target per module; its __main__.py is the binary that
  # `python -m benchmarks.suite` runs.
  assert targets["benchmark_suite_plans"].deps == {"lag_tf_pkg_a"}
  assert targets["benchmark_suite_main"].kind == "py_binary"
  assert targets["benchmark_suite_main"].deps == {"benchmark_suite_plans"}
  assert targets["benchmark_suite_pkg"].kind == "py_library"
  assert targets["test_suite"].deps == {"benchmark_suite_plans"}
  assert targets["test_suite"].data == {":benchmark_suite_main"}


def test_finds_a_cycle_through_the_package(fake_repo):
  _write(fake_repo, "lag_tf/pkg/a.py", "from lag_tf.pkg import b\n")
  _write(fake_repo, "lag_tf/pkg/b.py", "from lag_tf.pkg.a import A\n")
  assert build_file.cycles(build_file.build_targets(fake_repo)) == [
      ["lag_tf_pkg_a", "lag_tf_pkg_b"]]


def test_stale_build_is_reported(fake_repo):
  with open(os.path.join(fake_repo, "BUILD"), "w") as f:
    f.write(build_file.render(build_file.build_targets(fake_repo)))
  assert build_file.check(fake_repo) == (True, [])
  _write(fake_repo, "lag_tf/d.py", "")
  _write(fake_repo, "lag_tf/pkg/a.py", "from lag_tf import d\n")  # A new import.
  ok, problems = build_file.check(fake_repo)
  assert not ok and "does not match" in problems[0]


@pytest.mark.skipif(shutil.which("bazel") is None, reason="bazel is not installed")
def test_bazel_query_lists_every_target(tmp_path):
  """`bazel query //...` loads BUILD (labels, attributes) and lists every generated target."""
  bazel = ["bazel", f"--output_user_root={tmp_path}"]
  try:
    result = subprocess.run(bazel + ["query", "//...", "--noshow_progress"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
  finally:  # No Bazel server left running after the test.
    subprocess.run(bazel + ["shutdown"], cwd=REPO, capture_output=True, timeout=120)
  assert result.returncode == 0, result.stderr[-2000:]
  listed = {line.split(":", 1)[1] for line in result.stdout.split() if ":" in line}
  assert set(build_file.build_targets(REPO)) | {"gin_files", "docs"} <= listed
