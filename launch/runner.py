"""How launchers run commands: for real, or printed only (--dry_run).

Launch logic takes a runner so tests can script what gcloud answers (state transitions,
preemptions) without a cloud, and so --dry_run prints exactly the commands a real run executes.
Commands are argv lists run without a local shell.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from typing import Sequence, Tuple


class SubprocessRunner:
  """Runs commands; `run` streams their output through ours (live logs), `capture` keeps it."""

  def run(self, argv: Sequence[str]) -> int:
    print(f"+ {shlex.join(argv)}", file=sys.stderr, flush=True)
    return subprocess.run(list(argv), check=False).returncode

  def capture(self, argv: Sequence[str]) -> Tuple[int, str]:
    result = subprocess.run(list(argv), check=False, capture_output=True, text=True)
    return result.returncode, result.stdout

  def sleep(self, seconds: float) -> None:
    time.sleep(seconds)


class DryRunRunner:
  """Prints each command as a shell line and pretends it worked.

  Every query answers `answer` (default 'ACTIVE', so a dry run walks the whole happy path once:
  create, poll, install, train, delete).
  """

  def __init__(self, out=None, answer: str = "ACTIVE"):
    self.out = out or sys.stdout
    self.answer = answer

  def run(self, argv: Sequence[str]) -> int:
    print(shlex.join(argv), file=self.out, flush=True)
    return 0

  def capture(self, argv: Sequence[str]) -> Tuple[int, str]:
    print(shlex.join(argv), file=self.out, flush=True)
    return 0, f"{self.answer}\n"

  def sleep(self, seconds: float) -> None:
    pass
