"""Launchers: Cloud TPU dry-run commands (golden files, hostile input kept inert or refused), the
preemption/requeue flow against a scripted gcloud, TF_CONFIG generation and the multi-worker
per-host commands. No TensorFlow and no cloud: every test here runs in well under a second or
two. Regenerate the golden files with UPDATE_GOLDEN=1 and read the diff before committing."""

import json
import os
import shlex
import stat
import subprocess
import sys

import pytest

from launch import tf_config, tpu_commands
from launch.main_command import host_commands
from launch.tpu_job import JobFailed, TpuJob
from launch.tpu_spec import LaunchError, make_spec

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GOLDEN_DIR = os.path.join(REPO, "tests", "golden", "launch")
HOSTILE_BINDINGS = ["CANDIDATE='x'; rm -rf /'", "$(reboot)", "X = \"`id`\" && echo pwned"]
V4_8 = ["--name=lag-quickstart", "--zone=us-central2-b", "--accelerator_type=v4-8", "--spot",
        "--model_dir=gs://my-bucket/runs/quickstart",
        "--gin_file=gin/experiments/quickstart.gin",
        "--gin_bindings=include 'hardware/tpu_v4_8.gin'"]


def run_launcher(module, args, tmp_path, env=None):
  env = dict(os.environ, PYTHONPATH=REPO, TMPDIR=str(tmp_path), **(env or {}))
  return subprocess.run([sys.executable, "-m", module] + args, cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=60)


def check_golden(name, text, tmp_path):
  """Compares with tests/golden/launch/<name>, machine paths replaced by <REPO> and <TMP>."""
  text = text.replace(str(tmp_path), "<TMP>").replace(REPO, "<REPO>")
  path = os.path.join(GOLDEN_DIR, name)
  if os.environ.get("UPDATE_GOLDEN"):
    with open(path, "w") as f:
      f.write(text)
  with open(path) as f:
    assert text == f.read(), f"{name} changed; rerun with UPDATE_GOLDEN=1 and review the diff"


def command_lines(stdout):
  return [shlex.split(line) for line in stdout.strip().splitlines()]


def remote_command(argv):
  (flag,) = [a for a in argv if a.startswith("--command=")]
  return flag[len("--command="):]


# ---- Cloud TPU: the commands of a dry run ----------------------------------------------------

def test_dry_run_v4_8_from_the_local_repo(tmp_path):
  result = run_launcher("launch.cloud_tpu", V4_8 + ["--dry_run"], tmp_path)
  assert result.returncode == 0, result.stderr
  check_golden("cloud_tpu_v4_8_local_repo.txt", result.stdout, tmp_path)
  lines = command_lines(result.stdout)
  assert [ScriptedGcloud.label(argv) for argv in lines] == [
      "pack", "create", "describe", "copy", "install", "train", "delete"]
  train = lines[-2]
  remote = shlex.split(remote_command(train))
  assert remote[:4] == ["cd", "lag_tf", "&&", "python3"]
  assert remote[-3:] == ["--gin_bindings=make_strategy.name = 'tpu'",
                         "--gin_bindings=make_strategy.tpu_address = 'local'",
                         "--model_dir=gs://my-bucket/runs/quickstart"]


def test_dry_run_v5e_16_from_git_with_hostile_bindings(tmp_path):
  args = ["--name=lag-v5e", "--zone=us-west4-a", "--project=my-project",
          "--accelerator_type=v5litepod-16", "--model_dir=gs://my-bucket/runs/$(reboot)",
          "--repo=https://github.com/example/lag_tf.git",
          "--gin_file=gin/experiments/quickstart.gin", "--dry_run"]
  args += [f"--gin_bindings={binding}" for binding in HOSTILE_BINDINGS]
  result = run_launcher("launch.cloud_tpu", args, tmp_path)
  assert result.returncode == 0, result.stderr
  check_golden("cloud_tpu_v5e_16_git_hostile_bindings.txt", result.stdout, tmp_path)
  lines = command_lines(result.stdout)
  assert "--runtime-version" in lines[0] and "v2-alpha-tpuv5-lite" in lines[0]
  assert not any(argv[0] == "tar" for argv in lines)  # git repos are cloned, not copied
  remote = shlex.split(remote_command(lines[-2]))
  for binding in HOSTILE_BINDINGS:
    assert f"--gin_bindings={binding}" in remote
  assert "--model_dir=gs://my-bucket/runs/$(reboot)" in remote


def _fake_program(directory, name):
  """An executable `name` that records its argv as JSON lines in <directory>/<name>.calls."""
  path = directory / name
  path.write_text(f"#!{sys.executable}\nimport json, sys\n"
                  f"open({str(directory / (name + '.calls'))!r}, 'a').write("
                  "json.dumps(sys.argv[1:]) + '\\n')\n")
  path.chmod(path.stat().st_mode | stat.S_IEXEC)
  return directory / f"{name}.calls"


def test_printed_commands_are_inert_in_a_real_shell(tmp_path):
  """Both shells: the local one a printed line is pasted into, and the TPU VM's that runs
  --command. Fake gcloud and python3 record the argv they receive."""
  args = V4_8 + ["--dry_run"] + [f"--gin_bindings={b}" for b in HOSTILE_BINDINGS]
  result = run_launcher("launch.cloud_tpu", args, tmp_path)
  assert result.returncode == 0, result.stderr
  train_line = result.stdout.strip().splitlines()[-2]
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  gcloud_calls, python_calls = _fake_program(bin_dir, "gcloud"), _fake_program(bin_dir, "python3")
  (tmp_path / "lag_tf").mkdir()
  env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
  subprocess.run(["bash", "-c", train_line], cwd=tmp_path, env=env, check=True)
  (gcloud_argv,) = [json.loads(line) for line in gcloud_calls.read_text().splitlines()]
  subprocess.run(["bash", "-c", remote_command(gcloud_argv)], cwd=tmp_path, env=env, check=True)
  (python_argv,) = [json.loads(line) for line in python_calls.read_text().splitlines()]
  assert python_argv[:2] == ["-m", "lag_tf.main"]
  for binding in HOSTILE_BINDINGS:
    assert f"--gin_bindings={binding}" in python_argv
  assert sorted(os.listdir(tmp_path)) == ["bin", "lag_tf"]  # nothing else ran


@pytest.mark.parametrize("flag, message", [
    ("--name=x; rm -rf /", "not a valid TPU name"),
    ("--name=$(reboot)", "not a valid TPU name"),
    ("--name=Lag-Quickstart", "not a valid TPU name"),
    ("--name=1-lag", "not a valid TPU name"),
    ("--name=lag-", "not a valid TPU name"),
    ("--name=" + "a" * 64, "not a valid TPU name"),
    ("--zone=us-central2-b; reboot", "not a valid zone"),
    ("--project=$(reboot)", "not a valid project id"),
    ("--accelerator_type=v4-8 && reboot", "not a valid accelerator type"),
    ("--accelerator_type=v9z-8", "no default --runtime_version"),
    ("--runtime_version=base;reboot", "not a valid runtime version"),
    ("--model_dir=/tmp/runs/quickstart", "must be a gs:// path"),
    ("--model_dir=gs://", "not a valid gs://bucket/path"),
    ("--model_dir=gs://b/run", "not a valid gs://bucket/path"),
    ("--repo=not a repo; reboot", "neither a local directory nor a git URL"),
    ("--gin_file=/etc/passwd", "outside the repo"),
    ("--gin_bindings=X = 1\nrm -rf /", "holds a line break"),
    ("--max_preemptions=-1", "--max_preemptions must be"),
])
def test_hostile_or_bad_flags_are_refused_with_one_line(tmp_path, flag, message):
  result = run_launcher("launch.cloud_tpu", V4_8 + [flag, "--dry_run"], tmp_path)
  assert result.returncode == 2, result.stderr
  assert result.stdout == ""  # not one command printed, so none would have run
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_missing_required_flag(tmp_path):
  result = run_launcher("launch.cloud_tpu", [a for a in V4_8 if not a.startswith("--zone")]
                        + ["--dry_run"], tmp_path)
  assert result.returncode == 2 and result.stderr.strip() == "error: --zone is required"


# ---- Cloud TPU: the job's state machine against a scripted gcloud ---------------------------

class ScriptedGcloud:
  """A runner whose answers come from lists: queued-resource states, node states, and the exit
  codes of the commands that run. Records every command as a short label."""

  def __init__(self, states, run_codes=None, node_states=()):
    self.states = list(states)
    self.node_states = list(node_states)
    self.run_codes = dict(run_codes or {})  # label -> list of exit codes (default 0)
    self.calls = []
    self.slept = 0.0

  @staticmethod
  def label(argv):
    if argv[0] == "tar":
      return "pack"
    verb = argv[4]
    if verb == "ssh":
      return "train" if "lag_tf.main" in remote_command(argv) else "install"
    return {"create": "create", "delete": "delete", "scp": "copy"}.get(
        verb, "describe-node" if argv[3] == "tpu-vm" else "describe")

  def run(self, argv):
    label = self.label(argv)
    self.calls.append(label)
    codes = self.run_codes.get(label)
    return codes.pop(0) if codes else 0

  def capture(self, argv):
    label = self.label(argv)
    self.calls.append(label)
    answers = self.node_states if label == "describe-node" else self.states
    answer = answers.pop(0)
    return (1, "") if answer is None else (0, answer + "\n")

  def sleep(self, seconds):
    self.slept += seconds


def spec(repo=REPO):
  return make_spec(name="lag-test", zone="us-central2-b", project=None, accelerator_type="v4-8",
                   runtime_version=None, spot=True, model_dir="gs://bucket/run", repo=repo,
                   gin_files=["gin/experiments/quickstart.gin"], gin_bindings=[])


def job(runner, max_preemptions=3):
  return TpuJob(spec(), runner, tarball="/tmp/lag.tar.gz", max_preemptions=max_preemptions,
                poll_seconds=30, log=lambda message: None)


def test_spot_preemption_deletes_requeues_and_resumes():
  # WAITING -> ACTIVE -> (training drops: SUSPENDED) -> requeue -> ACTIVE -> training done.
  gcloud = ScriptedGcloud(
      states=["WAITING_FOR_RESOURCES", "ACTIVE", "SUSPENDED", "PROVISIONING", "ACTIVE"],
      run_codes={"train": [255, 0]})
  job(gcloud).run()
  assert gcloud.calls == [
      "pack", "create", "describe", "describe", "copy", "install", "train",
      "describe",  # why did ssh drop? the queued resource says SUSPENDED: preempted
      "delete", "create", "describe", "describe", "copy", "install", "train", "delete"]
  assert gcloud.slept == 60  # two polls that were not ACTIVE yet


def test_a_node_gone_behind_an_active_queued_resource_counts_as_preemption():
  gcloud = ScriptedGcloud(states=["ACTIVE", "ACTIVE", "ACTIVE"], node_states=["PREEMPTED"],
                          run_codes={"install": [255, 0]})
  job(gcloud).run()
  assert gcloud.calls == ["pack", "create", "describe", "copy", "install", "describe",
                          "describe-node", "delete", "create", "describe", "copy", "install",
                          "train", "delete"]


def test_suspended_while_waiting_requeues():
  gcloud = ScriptedGcloud(states=["WAITING_FOR_RESOURCES", "FAILED", "ACTIVE"])
  job(gcloud).run()
  assert gcloud.calls == ["pack", "create", "describe", "describe", "delete", "create",
                          "describe", "copy", "install", "train", "delete"]


def test_too_many_preemptions_gives_up_and_deletes():
  gcloud = ScriptedGcloud(states=["SUSPENDED", "SUSPENDED"])
  with pytest.raises(JobFailed, match=r"lost 2 times \(--max_preemptions=1\)"):
    job(gcloud, max_preemptions=1).run()
  assert gcloud.calls == ["pack", "create", "describe", "delete", "create", "describe",
                          "delete"]


def test_training_failing_on_a_healthy_tpu_is_not_retried():
  gcloud = ScriptedGcloud(states=["ACTIVE", "ACTIVE"], node_states=["READY"],
                          run_codes={"train": [1]})
  with pytest.raises(JobFailed, match="training failed with exit code 1 on a healthy TPU"):
    job(gcloud).run()
  assert gcloud.calls[-3:] == ["describe", "describe-node", "delete"]


def test_a_failed_create_deletes_nothing():
  # The name may belong to someone else's queued resource: never delete what we did not create.
  gcloud = ScriptedGcloud(states=[], run_codes={"create": [1]})
  with pytest.raises(JobFailed, match="could not create queued resource 'lag-test'"):
    job(gcloud).run()
  assert gcloud.calls == ["pack", "create"]


def test_make_spec_refuses_hostile_names_directly():
  with pytest.raises(LaunchError, match="not a valid TPU name"):
    make_spec(name="x; rm -rf /", zone="us-central2-b", project=None, accelerator_type="v4-8",
              runtime_version=None, spot=False, model_dir="gs://bucket/run", repo=REPO,
              gin_files=["gin/experiments/quickstart.gin"], gin_bindings=[])


def test_gin_files_become_repo_relative(tmp_path, monkeypatch):
  absolute = os.path.join(REPO, "gin", "experiments", "quickstart.gin")
  monkeypatch.chdir(tmp_path)  # a file given relative to another directory is found too
  job_spec = make_spec(name="lag-test", zone="us-central2-b", project=None,
                       accelerator_type="v4-8", runtime_version="tpu-ubuntu2204-base",
                       spot=False, model_dir="gs://bucket/run", repo=REPO,
                       gin_files=[absolute, os.path.relpath(absolute), "experiments/x.gin"],
                       gin_bindings=[])
  assert job_spec.gin_files == ("gin/experiments/quickstart.gin",
                                "gin/experiments/quickstart.gin", "experiments/x.gin")
  assert "--spot" not in tpu_commands.create_queued_resource(job_spec)


# ---- Multi-worker: TF_CONFIG and per-host commands ------------------------------------------

def test_tf_config_names_the_cluster_and_the_task():
  workers = [f"localhost:{port}" for port in tf_config.free_local_ports(3)]
  assert len(set(workers)) == 3
  configs = [json.loads(tf_config.tf_config(workers, index)) for index in range(3)]
  for index, config in enumerate(configs):
    assert config == {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
  with pytest.raises(ValueError, match="outside the 3 workers"):
    tf_config.tf_config(workers, 3)


def test_free_local_ports_are_distinct_and_bindable():
  import socket
  ports = tf_config.free_local_ports(4)
  assert len(set(ports)) == 4 and all(0 < port < 65536 for port in ports)
  for port in ports:
    with socket.socket() as sock:
      sock.bind(("127.0.0.1", port))


@pytest.mark.parametrize("hosts, message", [
    ("", "empty"), ("h1", "not host:port"), ("h1:0", "not host:port"),
    ("h1:99999", "not host:port"), ("h1:22;reboot", "not host:port"),
    ("h1:2222,h1:2222", "repeats"),
])
def test_parse_hosts_refuses_bad_entries(hosts, message):
  with pytest.raises(ValueError, match=message):
    tf_config.parse_hosts(hosts)


def test_print_commands_for_a_cluster(tmp_path):
  args = ["--print_commands", "--hosts=10.0.0.2:2222,10.0.0.3:2222",
          "--model_dir=gs://my-bucket/runs/multi_worker",
          "--gin_file=gin/experiments/quickstart.gin",
          "--gin_bindings=include 'hardware/multi_worker.gin'",
          f"--gin_bindings={HOSTILE_BINDINGS[0]}"]
  result = run_launcher("launch.multi_worker", args, tmp_path)
  assert result.returncode == 0, result.stderr
  check_golden("multi_worker_print_commands.txt", result.stdout, tmp_path)
  for index, argv in enumerate(command_lines(result.stdout)):
    assert argv[0] == "env" and argv[1].startswith("TF_CONFIG=")
    assert json.loads(argv[1][len("TF_CONFIG="):])["task"] == {"type": "worker", "index": index}
    assert f"--gin_bindings={HOSTILE_BINDINGS[0]}" in argv
    assert argv[-2:] == ["--gin_bindings=make_strategy.name = 'multi_worker'",
                         "--model_dir=gs://my-bucket/runs/multi_worker"]


def test_host_commands_is_pure():
  lines = host_commands(["a:1", "b:2"], "python3", ["x.gin"], [], "/m")
  assert len(lines) == 2 and lines[0] != lines[1]


def test_multi_worker_passes_the_model_dir_switches_to_every_worker(tmp_path):
  args = ["--print_commands", "--hosts=10.0.0.2:2222,10.0.0.3:2222", "--model_dir=/m",
          "--gin_file=gin/experiments/quickstart.gin", "--allow_non_empty"]
  result = run_launcher("launch.multi_worker", args, tmp_path)
  assert result.returncode == 0, result.stderr
  lines = command_lines(result.stdout)
  assert len(lines) == 2 and all(argv[-1] == "--allow_non_empty" for argv in lines)
  assert not any("--allow_config_change" in argv for argv in lines)


@pytest.mark.parametrize("args, message", [
    (["--print_commands", "--model_dir=/m", "--gin_file=x.gin"], "needs --hosts"),
    (["--print_commands", "--hosts=h1:22;reboot", "--model_dir=/m", "--gin_file=x.gin"],
     "not host:port"),
    (["--num_workers=0", "--model_dir=/m", "--gin_file=x.gin"], "at least 1"),
    (["--hosts=h1:1", "--model_dir=/m", "--gin_file=x.gin"], "only goes with --print_commands"),
    (["--gin_file=x.gin"], "--model_dir is required"),
])
def test_multi_worker_bad_flags(tmp_path, args, message):
  result = run_launcher("launch.multi_worker", args, tmp_path)
  assert result.returncode == 2
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines


def test_a_failing_worker_stops_the_others(tmp_path):
  """Worker 1 fails at once, worker 0 would run for a minute: the launcher stops it, exits 1."""
  fake_python = tmp_path / "fake_python"
  fake_python.write_text(
      f"#!{sys.executable}\nimport json, os, sys, time\n"
      "index = json.loads(os.environ['TF_CONFIG'])['task']['index']\n"
      "print('starting', flush=True)\n"
      "if index == 1:\n  sys.exit(3)\n"
      "time.sleep(60)\n")
  fake_python.chmod(fake_python.stat().st_mode | stat.S_IEXEC)
  result = run_launcher("launch.multi_worker",
                        ["--num_workers=2", f"--python={fake_python}", "--model_dir=/m",
                         "--gin_file=x.gin", "--stop_grace_seconds=2"], tmp_path)
  assert result.returncode == 1
  assert result.stderr.strip().splitlines()[-1] == (
      "error: worker 1 exited with code 3; stopped the others")
  assert "[worker 0] starting" in result.stdout and "[worker 1] starting" in result.stdout
