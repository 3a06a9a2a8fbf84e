"""Every command README.md, docs/*.md and the gin/experiments/*.gin headers document runs.

`python -m lag_tf.main ...` runs with `--dry_run` (in this process: TensorFlow is imported once
and a dry run costs about a second, where a subprocess costs ~10 s of imports on this machine),
with the model dir moved to a temporary dir (a dry run writes nothing; a leftover run in the
documented dir must not decide the test). `--dry_run=calibrate` really times training steps, so
its data moves to the small embedded corpus prepared for the session (reading the full corpus
would first tokenize ~32 MB). A `--gin_bindings=...` line of a gin header (a
variant, e.g. `gradual_experiment.mode='midas'`) is dry-run on that header's command.
`python -m launch....` runs as a subprocess with `--dry_run` (the launchers import no
TensorFlow), and the lag_tf.main command it would start is dry-run too.
`python -m lag_tf.analyze ...` runs as a subprocess on a small synthetic study dir.
A gin file a document asks the user to write (a ```gin block whose first line is
`# <name>: ...`) is written to a temporary dir for the commands that name it.
"""

import glob
import os
import re
import shlex
import subprocess
import sys

import pytest

from analysis_fixtures import write_study
from doc_fixtures import code_blocks, documents, without_code
from main_fixtures import run_main_in_process

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COMMAND = re.compile(r"python -m (?:lag_tf|launch)\.")


def _commands_in(text: str):
  """Commands in a text: continuation lines joined, `a && b` split, stopped at two spaces
  followed by a remark (`cmd     (or: ...)`)."""
  commands = []
  for line in re.sub(r"\\\n\s*", " ", text).splitlines():
    for part in line.split("&&"):
      match = COMMAND.search(part)
      if match:
        command = re.split(r"\s{3,}|`", part[match.start():])[0].split()
        if len(command) > 3:  # Not a bare mention of the module.
          commands.append(" ".join(command))
  return commands


def doc_commands():
  """(document, command) of each command in README.md and docs/*.md: in fenced blocks,
  indented blocks and `spans`."""
  found = []
  for path, text in documents().items():
    prose = without_code(text)
    spans = re.findall(r"`(python -m [^`]+)`", prose)
    indented = re.findall(r"^    (python -m .+)$", prose, re.M)
    found += [(path, c) for c in _commands_in("\n".join(code_blocks(text, "") + spans +
                                                          indented))]
  return found


def user_gin_files():
  """{file name: text} of the gin files the documents ask the user to write."""
  files = {}
  for text in documents().values():
    for block in code_blocks(text, "gin"):
      name = re.match(r"# ([\w.-]+\.gin):", block)
      if name:
        files[name.group(1)] = block + "\n"
  return files


def _with_user_gin_files(argv, directory):
  """A --gin_file that is not in the repository but a document's own file: written to
  `directory`, and named by its path there."""
  files = user_gin_files()
  result = []
  for arg in argv:
    name = arg.split("=", 1)[1] if arg.startswith("--gin_file=") else None
    if name and not os.path.exists(os.path.join(REPO, name)) and name in files:
      path = os.path.join(directory, name)
      with open(path, "w") as f:
        f.write(files[name])
      arg = f"--gin_file={path}"
    result.append(arg)
  return result


def gin_header(path):
  lines = []
  with open(path) as f:
    for line in f:
      if not line.startswith("#"):
        break
      lines.append(line[1:].strip())
  return "\n".join(lines)


def gin_commands():
  found = []
  for path in sorted(glob.glob(os.path.join(REPO, "gin", "experiments", "*.gin"))):
    header = gin_header(path)
    name = os.path.relpath(path, REPO)
    commands = _commands_in(header)
    found += [(name, c) for c in commands]
    mains = [c for c in commands if c.startswith("python -m lag_tf.main")]
    for line in re.sub(r"\\\n\s*", " ", header).splitlines():
      variants = re.findall(r"--gin_bindings=(\"[^\"]*\"|'[^']*')", line)
      if variants and not re.search(r"\bpython3? ", line):  # Not a command of its own.
        assert mains, f"{name} documents bindings without a lag_tf.main command to use them"
        found.append((f"{name} variant", mains[0] + " " + " ".join(
            f"--gin_bindings={v}" for v in variants)))
  return found


def _first_of_each(found):
  """A command documented in several places runs once, under the first place that shows it."""
  first = {}
  for source, command in found:
    first.setdefault(command, source)
  return [(source, command) for command, source in first.items()]


ALL = _first_of_each(doc_commands() + gin_commands())


def _argv(command: str):
  return shlex.split(command)[3:]  # After `python -m module`.


def _with_model_dir(argv, model_dir):
  """Local model dirs move to `model_dir`; gs:// ones stay (nothing reads or writes them)."""
  return [f"--model_dir={model_dir}" if a.startswith("--model_dir=") and "gs://" not in a
          else a for a in argv]


def _is_suite(argv):
  """A comparison-suite file binds every method's experiment; one run uses one of them (a
  variant may likewise make the file's own bindings moot): warnings are expected there."""
  for arg in argv:
    if arg.startswith("--gin_file="):
      with open(os.path.join(REPO, arg.split("=", 1)[1])) as f:
        if "include 'runs/speedup.gin'" in f.read():
          return True
  return False


def dry_run_main(argv, capsys, monkeypatch):
  """A dry run of `argv`: a plain one, or the calibrating one the command asks for."""
  mode = "--dry_run=calibrate" if "--dry_run=calibrate" in argv else "--dry_run"
  argv = [a for a in argv if not a.startswith("--dry_run")] + [mode]
  return run_main_in_process(argv, capsys, monkeypatch)


def _with_small_data(argv, data_dir):
  return argv + ["--gin_bindings=include 'data/stdlib_corpus_small.gin'",
                 f"--gin_bindings=DATA_DIR = '{data_dir}'"]


def test_the_documents_have_the_commands():
  modules = {shlex.split(c)[2] for _, c in ALL}
  assert {"lag_tf.main", "lag_tf.analyze", "launch.cloud_tpu", "launch.multi_worker"} <= modules
  assert any("grow_once.gin" in c and "CANDIDATE=" in c for source, c in ALL
             if not source.startswith("gin/"))
  assert any(source == "README.md" for source, _ in ALL)
  assert len(ALL) >= 15, ALL
  named = {a.split("=", 1)[1] for _, c in ALL for a in _argv(c) if a.startswith("--gin_file=")}
  assert set(user_gin_files()) <= named  # A document's own gin file is run by its command.


MAIN = [(s, c) for s, c in ALL if shlex.split(c)[2] == "lag_tf.main"]


@pytest.mark.parametrize("source, command", MAIN, ids=[f"{s}: {c[:90]}" for s, c in MAIN])
def test_main_command_dry_runs(source, command, tmp_path, capsys, monkeypatch, request):
  argv = _with_user_gin_files(_with_model_dir(_argv(command), tmp_path / "run"), tmp_path)
  calibrate = "--dry_run=calibrate" in argv
  if calibrate:
    argv = _with_small_data(argv, request.getfixturevalue("data_dir"))
  code, out, err = dry_run_main(argv, capsys, monkeypatch)
  assert code == 0, (source, err[-2000:])
  assert "total:" in out and "estimated wall time" in out
  assert ("GFLOP/s (measured now" in out) == calibrate, out
  if not source.endswith("variant") and not _is_suite(argv):
    assert "warning:" not in err, err  # No binding without effect in a documented command.
  assert not os.path.exists(tmp_path / "run")


LAUNCH = [(s, c) for s, c in ALL if shlex.split(c)[2].startswith("launch.")]


@pytest.mark.parametrize("source, command", LAUNCH, ids=[f"{s}: {c[:90]}" for s, c in LAUNCH])
def test_launcher_dry_runs_and_its_main_command_too(source, command, tmp_path, capsys,
                                                    monkeypatch):
  argv = _with_model_dir(_argv(command), tmp_path / "run")
  dry = [] if "--print_commands" in argv else ["--dry_run"]
  result = subprocess.run([sys.executable, "-m", shlex.split(command)[2]] + argv + dry,
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, (source, result.stderr[-2000:])
  assert "lag_tf.main" in result.stdout
  main_argv = [a for a in argv if a.startswith(("--gin_file=", "--gin_bindings=", "--model_dir"))]
  code, _, err = dry_run_main(main_argv, capsys, monkeypatch)
  assert code == 0, (source, err[-2000:])
  assert "warning:" in err if _is_suite(main_argv) else "warning:" not in err, err


ANALYZE = [(s, c) for s, c in ALL if shlex.split(c)[2] == "lag_tf.analyze"]


@pytest.mark.parametrize("source, command", ANALYZE, ids=[f"{s}: {c[:90]}" for s, c in ANALYZE])
def test_analyze_command_runs_on_a_small_study(source, command, tmp_path):
  root = write_study(tmp_path / "study")
  argv = [f"--experiment_dir={root}" if a.startswith("--experiment_dir=") else a
          for a in _argv(command)]
  result = subprocess.run([sys.executable, "-m", "lag_tf.analyze"] + argv + ["--bootstrap=50"],
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), capture_output=True,
                          text=True, timeout=600)
  assert result.returncode == 0, (source, result.stderr[-2000:])
  assert os.path.exists(os.path.join(root, "report", "report.md"))
