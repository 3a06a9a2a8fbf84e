"""The gcloud commands of a Cloud TPU job, as argv lists (pure functions of a TpuJobSpec).

Commands run without a local shell (subprocess with an argv list) and print as `shlex.join`,
so a printed command pasted into a shell does the same thing. The `--command` given to
`tpu-vm ssh` is a shell string run on every TPU VM: it is built from argv lists with
`shlex.join`, so each gin binding reaches `lag_tf.main` as one intact argument whatever quotes,
`;` or `$(...)` it holds; the outer `shlex.join` then quotes that string once more.
"""

from __future__ import annotations

import shlex
from typing import List, Sequence

from launch.main_command import main_argv
from launch.tpu_spec import TpuJobSpec

REMOTE_DIR = "lag_tf"  # in the TPU VM user's home directory
REMOTE_TARBALL = "lag_tf.tar.gz"
TPU_BINDINGS = ("make_strategy.name = 'tpu'", "make_strategy.tpu_address = 'local'")
# Queued-resource states: ACTIVE runs; these mean the TPU is gone or going (spot preemption,
# maintenance, provisioning failure): delete and queue again.
ACTIVE = "ACTIVE"
LOST_STATES = ("SUSPENDING", "SUSPENDED", "FAILED", "DELETING")
# TPU node states that mean the VMs are gone even if the queued resource has not noticed yet.
LOST_NODE_STATES = ("PREEMPTED", "TERMINATED", "STOPPED", "STOPPING", "DELETING")


def _location(spec: TpuJobSpec) -> List[str]:
  flags = ["--zone", spec.zone]
  if spec.project:
    flags += ["--project", spec.project]
  return flags


def create_queued_resource(spec: TpuJobSpec) -> List[str]:
  argv = ["gcloud", "compute", "tpus", "queued-resources", "create", spec.name,
          "--node-id", spec.name] + _location(spec) + [
              "--accelerator-type", spec.accelerator_type,
              "--runtime-version", spec.runtime_version]
  if spec.spot:
    argv.append("--spot")
  return argv


def describe_queued_resource(spec: TpuJobSpec) -> List[str]:
  return ["gcloud", "compute", "tpus", "queued-resources", "describe", spec.name] + _location(
      spec) + ["--format=value(state.state)"]


def describe_node(spec: TpuJobSpec) -> List[str]:
  return ["gcloud", "compute", "tpus", "tpu-vm", "describe", spec.name] + _location(spec) + [
      "--format=value(state)"]


def delete_queued_resource(spec: TpuJobSpec) -> List[str]:
  # --force also deletes the TPU node; --quiet skips the confirmation prompt.
  return ["gcloud", "compute", "tpus", "queued-resources", "delete", spec.name] + _location(
      spec) + ["--force", "--quiet"]


def pack_repo(spec: TpuJobSpec, tarball: str) -> List[str]:
  """Local tarball of the repo (only for a local --repo)."""
  return ["tar", "-czf", tarball, "--exclude=.git", "--exclude=.venv", "--exclude=__pycache__",
          "-C", spec.repo.location, "."]


def copy_repo(spec: TpuJobSpec, tarball: str) -> List[str]:
  return ["gcloud", "compute", "tpus", "tpu-vm", "scp", tarball,
          f"{spec.name}:{REMOTE_TARBALL}"] + _location(spec) + ["--worker=all"]


def _remote_script(steps: Sequence[Sequence[str]]) -> str:
  return " && ".join(shlex.join(step) for step in steps)


def _ssh_all_workers(spec: TpuJobSpec, script: str) -> List[str]:
  return ["gcloud", "compute", "tpus", "tpu-vm", "ssh", spec.name] + _location(spec) + [
      "--worker=all", f"--command={script}"]


def install_script(spec: TpuJobSpec) -> str:
  if spec.repo.kind == "local":
    fetch = [["mkdir", "-p", REMOTE_DIR], ["tar", "-xzf", REMOTE_TARBALL, "-C", REMOTE_DIR]]
  else:
    fetch = [["git", "clone", "--depth", "1", "--", spec.repo.location, REMOTE_DIR]]
  return _remote_script([["rm", "-rf", REMOTE_DIR]] + fetch + [
      ["cd", REMOTE_DIR],
      ["python3", "-m", "pip", "install", "-q", "-r", "requirements-tpu.txt"]])


def install(spec: TpuJobSpec) -> List[str]:
  return _ssh_all_workers(spec, install_script(spec))


def train_script(spec: TpuJobSpec) -> str:
  run = main_argv("python3", spec.gin_files, spec.gin_bindings, spec.model_dir, TPU_BINDINGS)
  return _remote_script([["cd", REMOTE_DIR], run])


def train(spec: TpuJobSpec) -> List[str]:
  """Starts lag_tf.main on every worker; it resumes from model_dir's latest checkpoint."""
  return _ssh_all_workers(spec, train_script(spec))
