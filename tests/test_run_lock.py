"""run.lock: one process per model dir; a dead owner's lock is taken over, a live one's never."""

import json
import os
import socket
import subprocess
import sys

import pytest

from lag_tf import run_lock


def _write_lock(directory, pid, host=None):
  with open(run_lock.lock_path(str(directory)), "w") as f:
    json.dump({"pid": pid, "host": host or socket.gethostname(), "started": "then"}, f)


@pytest.fixture
def live_process():
  process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  yield process
  process.kill()
  process.wait()


def test_acquire_writes_pid_host_and_time_and_release_removes_it(tmp_path):
  lock = run_lock.RunLock(str(tmp_path)).acquire()
  owner = run_lock.read_lock(str(tmp_path))
  assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
  assert owner["started"].endswith("Z")
  assert sorted(os.listdir(tmp_path)) == ["run.lock"]  # No temporary file left.
  lock.release()
  assert run_lock.read_lock(str(tmp_path)) is None


def test_a_live_owner_is_refused_with_its_pid_and_host(tmp_path, live_process):
  _write_lock(tmp_path, live_process.pid)
  with pytest.raises(run_lock.LockHeldError,
                     match=f"in use by pid {live_process.pid} on host {socket.gethostname()}"):
    run_lock.RunLock(str(tmp_path)).acquire()
  assert run_lock.read_lock(str(tmp_path))["pid"] == live_process.pid


def test_a_dead_owner_on_this_host_is_recovered(tmp_path):
  dead = subprocess.Popen([sys.executable, "-c", "pass"])
  dead.wait()
  _write_lock(tmp_path, dead.pid)
  with run_lock.RunLock(str(tmp_path)):
    assert run_lock.read_lock(str(tmp_path))["pid"] == os.getpid()
  assert run_lock.read_lock(str(tmp_path)) is None


def test_another_hosts_lock_is_never_judged_stale(tmp_path):
  _write_lock(tmp_path, 1, host="some-other-host")
  with pytest.raises(run_lock.LockHeldError, match="some-other-host"):
    run_lock.RunLock(str(tmp_path)).acquire()


def test_an_unreadable_lock_is_refused_not_ignored(tmp_path):
  (tmp_path / "run.lock").write_text("{cut")
  with pytest.raises(run_lock.LockHeldError, match="unreadable"):
    run_lock.RunLock(str(tmp_path)).acquire()


def test_release_leaves_a_lock_that_is_no_longer_ours(tmp_path, live_process):
  lock = run_lock.RunLock(str(tmp_path)).acquire()
  _write_lock(tmp_path, live_process.pid)  # E.g. removed by hand and taken by another run.
  lock.release()
  assert run_lock.read_lock(str(tmp_path))["pid"] == live_process.pid
