"""README's two commands stay true: the test command is the one CI runs."""

import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(path):
  with open(os.path.join(REPO, path)) as f:
    return f.read()


def test_readme_has_two_commands_and_ci_runs_the_test_one():
  blocks = re.findall(r"```\n(.*?)\n```", _read("README.md"), re.S)
  setup, tests = blocks[0].strip(), blocks[1].strip()
  assert "pip install -r requirements.txt" in setup and "python -m lag_tf.main" in setup
  gin_file = re.search(r"--gin_file=(\S+)", setup).group(1)
  assert os.path.isfile(os.path.join(REPO, gin_file))
  ci_commands = [line.strip() for line in _read(".ci/run").splitlines()
                 if line.strip() and not line.strip().startswith("#")]
  assert ci_commands[-1] == tests
