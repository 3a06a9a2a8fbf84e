r"""Runs a lag_tf experiment as a Cloud TPU batch job that survives spot preemption.

  python -m launch.cloud_tpu --name=lag-quickstart --zone=us-central2-b \
    --accelerator_type=v4-8 --spot --model_dir=gs://my-bucket/runs/quickstart \
    --gin_file=gin/experiments/quickstart.gin \
    --gin_bindings="include 'hardware/tpu_v4_8.gin'"

Queues a TPU (gcloud queued resource), waits until it is ACTIVE, installs the repo and
requirements-tpu.txt on every worker, runs `python3 -m lag_tf.main` there with the TPU strategy
and streams its output. When the TPU is lost it deletes it, queues a new one and resumes from
the model dir's latest checkpoint. --dry_run prints every command instead of running it.

Exit codes: 0 done; 2 bad flags (one `error:` line, nothing created); 1 the job failed.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile

from absl import app, flags

from launch import tpu_spec
from launch.runner import DryRunRunner, SubprocessRunner
from launch.tpu_job import JobFailed, TpuJob

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "Gin files (paths relative to the repo root).")
flags.DEFINE_multi_string("gin_bindings", [], "Gin bindings, passed through unchanged.")
flags.DEFINE_string("name", None, "Queued resource and TPU name (lowercase, digits, hyphens).")
flags.DEFINE_string("zone", None, "Zone, e.g. us-central2-b (v4) or us-west4-a (v5e).")
flags.DEFINE_string("project", None, "Project id (default: gcloud's configured project).")
flags.DEFINE_string("accelerator_type", None, "TPU type, e.g. v4-8 or v5litepod-16.")
flags.DEFINE_string("runtime_version", None,
                    "TPU VM image (default: the generation's base image, e.g. "
                    "tpu-ubuntu2204-base for v4; TensorFlow comes from requirements-tpu.txt).")
flags.DEFINE_bool("spot", False, "Use spot capacity (cheaper; preempted TPUs are requeued).")
flags.DEFINE_string("model_dir", None, "gs:// experiment directory (checkpoints survive the TPU).")
flags.DEFINE_string("repo", _REPO_ROOT,
                    "The lag_tf source: a local directory (copied as a tarball) or a git URL.")
flags.DEFINE_bool("dry_run", False, "Print every command instead of running it.")
flags.DEFINE_integer("max_preemptions", 10, "Give up after the TPU was lost this many times.")
flags.DEFINE_float("poll_seconds", 60.0, "Seconds between queued-resource state queries.")

EXIT_BAD_INPUT = 2
EXIT_JOB_FAILED = 1


def _fail(code: int, message: str) -> None:
  print(f"error: {message}", file=sys.stderr, flush=True)
  sys.exit(code)


def main(argv) -> None:
  if len(argv) > 1:
    _fail(EXIT_BAD_INPUT, f"unexpected arguments {argv[1:]}; use --gin_file/--gin_bindings")
  for flag in ("name", "zone", "accelerator_type", "model_dir"):
    if not FLAGS[flag].value:
      _fail(EXIT_BAD_INPUT, f"--{flag} is required")
  if FLAGS.max_preemptions < 0 or FLAGS.poll_seconds <= 0:
    _fail(EXIT_BAD_INPUT, "--max_preemptions must be >= 0 and --poll_seconds > 0")
  try:
    spec = tpu_spec.make_spec(
        name=FLAGS.name, zone=FLAGS.zone, project=FLAGS.project,
        accelerator_type=FLAGS.accelerator_type, runtime_version=FLAGS.runtime_version,
        spot=FLAGS.spot, model_dir=FLAGS.model_dir, repo=FLAGS.repo,
        gin_files=FLAGS.gin_file, gin_bindings=FLAGS.gin_bindings)
  except tpu_spec.LaunchError as error:
    _fail(EXIT_BAD_INPUT, str(error))
  if FLAGS.dry_run:
    runner = DryRunRunner()
  elif shutil.which("gcloud") is None:
    _fail(EXIT_BAD_INPUT, "gcloud is not on PATH; install the Google Cloud CLI (or use --dry_run)")
  else:
    runner = SubprocessRunner()
  tarball = os.path.join(tempfile.gettempdir(), f"lag_tf-{spec.name}.tar.gz")
  job = TpuJob(spec, runner, tarball=tarball if spec.repo.kind == "local" else None,
               max_preemptions=FLAGS.max_preemptions, poll_seconds=FLAGS.poll_seconds)
  try:
    job.run()
  except JobFailed as error:
    _fail(EXIT_JOB_FAILED, str(error))
  except KeyboardInterrupt:
    _fail(EXIT_JOB_FAILED, "interrupted; the queued resource was deleted")


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
