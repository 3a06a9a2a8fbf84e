"""A Cloud TPU job's settings, validated before any command is built.

Every value here ends up in a gcloud command line and most in a remote shell. Names GCP itself
restricts (TPU and queued-resource ids, zones, projects, accelerator types) are checked against
GCP's rules so a hostile value is refused with one line; free text (gin bindings, the model
dir, a git URL) is shell-quoted where the commands are built (tpu_commands).
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional, Tuple

# GCP resource ids (RFC 1035): lowercase letter first, then lowercase letters, digits, hyphens;
# no trailing hyphen; at most 63 characters.
_RESOURCE_NAME = re.compile(r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?")
_ZONE = re.compile(r"[a-z]+-[a-z]+[0-9]+-[a-z]")
# Project ids: 6-30 characters, optionally domain-scoped ("example.com:my-project").
_PROJECT = re.compile(r"(?:[a-z0-9][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]")
# v2-8, v3-32, v4-8, v5p-8, v5litepod-16, v6e-8 ...
_ACCELERATOR_TYPE = re.compile(r"(v[0-9]+[a-z]*)-([0-9]+)")
_RUNTIME_VERSION = re.compile(r"[a-z0-9][-a-z0-9.]{0,62}")
_BUCKET = re.compile(r"gs://[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9](?:/[^\n\r\0]*)?")
_GIT_URL = re.compile(r"(?:https?|ssh|git)://\S+|git@[^\s:]+:\S+")

# We pip-install tensorflow-tpu 2.20 ourselves (requirements-tpu.txt), so each TPU generation
# gets Google's plain base image, with no framework preinstalled to conflict with ours.
_BASE_IMAGES = {
    "v2": "tpu-ubuntu2204-base",
    "v3": "tpu-ubuntu2204-base",
    "v4": "tpu-ubuntu2204-base",
    "v5litepod": "v2-alpha-tpuv5-lite",
    "v5e": "v2-alpha-tpuv5-lite",
    "v5p": "v2-alpha-tpuv5",
    "v6e": "v2-alpha-tpuv6e",
}


class LaunchError(ValueError):
  """A bad launcher setting; the message is one line."""


@dataclasses.dataclass(frozen=True)
class RepoSource:
  """Where the TPU VMs get the project: a local directory (copied as a tarball) or git."""
  kind: str  # 'local' or 'git'
  location: str  # an absolute directory or a git URL


@dataclasses.dataclass(frozen=True)
class TpuJobSpec:
  name: str  # the queued resource and its TPU node share this id
  zone: str
  project: Optional[str]
  accelerator_type: str
  runtime_version: str
  spot: bool
  model_dir: str
  repo: RepoSource
  gin_files: Tuple[str, ...]  # paths relative to the repo root (as the TPU VM sees them)
  gin_bindings: Tuple[str, ...]


def _check(pattern: re.Pattern, value: str, flag: str, rule: str) -> str:
  if not isinstance(value, str) or not pattern.fullmatch(value):
    raise LaunchError(f"{flag}={value!r} is not a valid {rule}")
  return value


def check_name(name: str) -> str:
  return _check(_RESOURCE_NAME, name, "--name",
                "TPU name (lowercase letters, digits and hyphens, starting with a letter, "
                "not ending with a hyphen, at most 63 characters)")


def default_runtime_version(accelerator_type: str) -> str:
  generation = _ACCELERATOR_TYPE.fullmatch(accelerator_type).group(1)
  if generation not in _BASE_IMAGES:
    raise LaunchError(f"no default --runtime_version for {accelerator_type}; pass one "
                      f"(known generations: {', '.join(sorted(_BASE_IMAGES))})")
  return _BASE_IMAGES[generation]


def repo_source(repo: str) -> RepoSource:
  if repo and os.path.isdir(repo):
    if not os.path.isfile(os.path.join(repo, "requirements-tpu.txt")):
      raise LaunchError(f"--repo={repo!r} has no requirements-tpu.txt; is it the lag_tf repo?")
    return RepoSource("local", os.path.abspath(repo))
  if repo and _GIT_URL.fullmatch(repo):
    return RepoSource("git", repo)
  raise LaunchError(f"--repo={repo!r} is neither a local directory nor a git URL "
                    "(https://, ssh://, git:// or git@host:path)")


def remote_gin_file(path: str, repo: RepoSource) -> str:
  """The gin file's path on the TPU VM, where the repo root is the working directory.

  A file that exists here is located relative to a local repo (so `--gin_file` works from any
  directory); other relative paths pass unchanged (lag_tf.main also searches gin/).
  """
  if repo.kind == "local" and (os.path.isabs(path) or os.path.isfile(path)):
    relative = os.path.relpath(os.path.abspath(path), repo.location)
    if not relative.startswith(os.pardir):
      return relative
  elif not os.path.isabs(path):
    return path
  raise LaunchError(f"--gin_file={path!r} is outside the repo; the TPU VMs only have the repo's "
                    "files (pass a path relative to the repo root)")


def make_spec(name: str, zone: str, project: Optional[str], accelerator_type: str,
              runtime_version: Optional[str], spot: bool, model_dir: str, repo: str,
              gin_files, gin_bindings) -> TpuJobSpec:
  """Validates every setting; raises LaunchError with one line for the first bad one."""
  check_name(name)
  _check(_ZONE, zone, "--zone", "zone (e.g. us-central2-b)")
  if project is not None:
    _check(_PROJECT, project, "--project", "project id")
  _check(_ACCELERATOR_TYPE, accelerator_type, "--accelerator_type",
         "accelerator type (e.g. v4-8, v5litepod-16)")
  if runtime_version is None:
    runtime_version = default_runtime_version(accelerator_type)
  _check(_RUNTIME_VERSION, runtime_version, "--runtime_version",
         "runtime version (e.g. tpu-ubuntu2204-base)")
  if not isinstance(model_dir, str) or not model_dir.startswith("gs://"):
    raise LaunchError(f"--model_dir={model_dir!r} must be a gs:// path (TPU VMs are "
                      "preempted and replaced; only a bucket outlives them)")
  if not _BUCKET.fullmatch(model_dir):
    raise LaunchError(f"--model_dir={model_dir!r} is not a valid gs://bucket/path (bucket names: "
                      "3-222 lowercase letters, digits, '-', '_', '.')")
  if not gin_files:
    raise LaunchError("give at least one --gin_file (e.g. gin/experiments/quickstart.gin)")
  source = repo_source(repo)
  for binding in gin_bindings:
    if "\n" in binding or "\r" in binding or "\0" in binding:
      # Newlines survive quoting but make the printed commands ambiguous to read.
      raise LaunchError(f"--gin_bindings={binding!r} holds a line break; pass one binding per flag")
  return TpuJobSpec(name=name, zone=zone, project=project, accelerator_type=accelerator_type,
                    runtime_version=runtime_version, spot=bool(spot), model_dir=model_dir,
                    repo=source,
                    gin_files=tuple(remote_gin_file(path, source) for path in gin_files),
                    gin_bindings=tuple(gin_bindings))
