"""Whole-file writes: the target is the old file or the new one, a failed write leaves nothing
behind and names the file, and an exclusive write never replaces."""

import errno
import os

import pytest

from lag_tf import atomic_file
from lag_tf.training import failures


def test_write_replaces_whole_and_leaves_no_temporary(tmp_path):
  path = str(tmp_path / "summary.md")
  atomic_file.write_text(path, "old\n")
  atomic_file.write_text(path, "new\n")
  assert open(path).read() == "new\n" and os.listdir(tmp_path) == ["summary.md"]


def test_exclusive_write_never_replaces(tmp_path):
  path = str(tmp_path / "stage-0.json")
  atomic_file.write_text(path, "first\n", exclusive=True)
  with pytest.raises(FileExistsError):
    atomic_file.write_text(path, "second\n", exclusive=True)
  assert open(path).read() == "first\n" and os.listdir(tmp_path) == ["stage-0.json"]


def test_a_full_disk_keeps_the_old_file_and_names_the_target(tmp_path, monkeypatch):
  path = str(tmp_path / "stage-0.json")
  atomic_file.write_text(path, "old\n")

  def full(_):
    raise OSError(errno.ENOSPC, "No space left on device")  # As a write reports it: no file.

  monkeypatch.setattr(os, "fsync", full)
  with pytest.raises(OSError) as raised:
    atomic_file.write_text(path, "new\n")
  assert raised.value.errno == errno.ENOSPC and raised.value.filename == path
  assert failures.is_disk_full(raised.value) and path in str(raised.value)
  assert open(path).read() == "old\n" and os.listdir(tmp_path) == ["stage-0.json"]
