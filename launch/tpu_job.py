"""The life of a Cloud TPU batch job: queue, wait, install, train, and requeue on preemption.

A spot TPU can vanish at any time. The job then deletes the queued resource, queues a new one
and starts training again; `lag_tf.main` resumes from the latest checkpoint in the gs:// model
dir, so only the steps since that checkpoint are lost. The queued resource is deleted on every
exit (done, failed, Ctrl-C), so no TPU is left running unattended.
"""

from __future__ import annotations

import sys
from typing import Callable, Optional

from launch import tpu_commands as commands
from launch.tpu_spec import TpuJobSpec

# Consecutive failed status queries tolerated while waiting (gcloud hiccups, not real errors).
_MAX_QUERY_FAILURES = 3


class JobFailed(RuntimeError):
  """The job cannot go on; the message is one line."""


def _log_to_stderr(message: str) -> None:
  print(f"cloud_tpu: {message}", file=sys.stderr, flush=True)


class TpuJob:
  """Runs one TpuJobSpec with a runner (SubprocessRunner, DryRunRunner or a test's fake)."""

  def __init__(self, spec: TpuJobSpec, runner, tarball: Optional[str] = None,
               max_preemptions: int = 10, poll_seconds: float = 60.0,
               log: Callable[[str], None] = _log_to_stderr):
    if spec.repo.kind == "local" and not tarball:
      raise ValueError("a local repo needs a tarball path")
    self.spec = spec
    self.runner = runner
    self.tarball = tarball
    self.max_preemptions = max_preemptions
    self.poll_seconds = poll_seconds
    self.log = log
    self.preemptions = 0
    self._queued = False  # only delete what this job created

  def run(self) -> None:
    """Runs to completion; raises JobFailed (after deleting the TPU) if it cannot."""
    if self.spec.repo.kind == "local":
      # Packed once, before paying for a TPU.
      self._require(self.runner.run(commands.pack_repo(self.spec, self.tarball)) == 0,
                    f"could not pack {self.spec.repo.location} into {self.tarball}")
    try:
      while True:
        self._queue()
        state = self._wait_until_active()
        if state == commands.ACTIVE:
          if self._install_and_train():
            self.log(f"training finished; results are in {self.spec.model_dir}")
            return
          state = "gone while running"
        self._count_preemption(state)
        self._delete()
    finally:
      self._delete()

  # ---- steps -------------------------------------------------------------------------------

  def _queue(self) -> None:
    self.log(f"queueing {self.spec.accelerator_type} '{self.spec.name}' in {self.spec.zone}"
             + (" (spot)" if self.spec.spot else ""))
    self._require(self.runner.run(commands.create_queued_resource(self.spec)) == 0,
                  f"could not create queued resource '{self.spec.name}' (see gcloud's message "
                  "above; an existing one of that name must be deleted first)")
    self._queued = True

  def _wait_until_active(self) -> str:
    """Polls the queued resource; returns ACTIVE or the state that means the TPU was lost."""
    last_state, failures = None, 0
    while True:
      code, output = self.runner.capture(commands.describe_queued_resource(self.spec))
      state = output.strip()
      if code != 0 or not state:
        failures += 1
        self._require(failures < _MAX_QUERY_FAILURES,
                      f"cannot read the state of queued resource '{self.spec.name}' "
                      f"({failures} tries)")
      else:
        failures = 0
        if state != last_state:
          self.log(f"queued resource '{self.spec.name}' is {state}")
          last_state = state
        if state == commands.ACTIVE or state in commands.LOST_STATES:
          return state
      self.runner.sleep(self.poll_seconds)

  def _install_and_train(self) -> bool:
    """True when training finished; False when the TPU was lost on the way."""
    steps = []
    if self.spec.repo.kind == "local":
      steps.append(("copying the repo", commands.copy_repo(self.spec, self.tarball)))
    steps.append(("installing", commands.install(self.spec)))
    steps.append(("training", commands.train(self.spec)))
    for label, argv in steps:
      self.log(f"{label} on every worker of '{self.spec.name}'")
      code = self.runner.run(argv)
      if code == 0:
        continue
      if self._tpu_lost():
        self.log(f"the TPU was lost while {label} (exit code {code})")
        return False
      raise JobFailed(f"{label} failed with exit code {code} on a healthy TPU; see the output "
                      "above (the TPU is deleted; the model dir keeps the latest checkpoint)")
    return True

  def _tpu_lost(self) -> bool:
    """Whether a failed command failed because the TPU went away (preemption, maintenance)."""
    code, state = self.runner.capture(commands.describe_queued_resource(self.spec))
    if code != 0 or state.strip() in commands.LOST_STATES:
      return True
    code, node_state = self.runner.capture(commands.describe_node(self.spec))
    return code != 0 or node_state.strip() in commands.LOST_NODE_STATES

  def _count_preemption(self, state: str) -> None:
    self.preemptions += 1
    if self.preemptions > self.max_preemptions:
      raise JobFailed(f"the TPU was lost {self.preemptions} times (--max_preemptions="
                      f"{self.max_preemptions}); rerun to resume from {self.spec.model_dir}")
    self.log(f"TPU lost ({state}); deleting and queueing again (preemption "
             f"{self.preemptions} of at most {self.max_preemptions})")

  def _delete(self) -> None:
    if not self._queued:
      return
    self.log(f"deleting queued resource '{self.spec.name}'")
    # A failure here is reported but not fatal: the resource may already be gone.
    if self.runner.run(commands.delete_queued_resource(self.spec)) != 0:
      self.log(f"could not delete '{self.spec.name}'; check `gcloud compute tpus "
               "queued-resources list` so it does not keep running")
    self._queued = False

  def _require(self, condition: bool, message: str) -> None:
    if not condition:
      raise JobFailed(message)
