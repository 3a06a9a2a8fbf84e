"""A quiet console for the binaries: TensorFlow's native start-up banners and gin's per-include
lines are hidden unless the user asks for verbose output (`-v 1` / `--verbosity=1`), and
TensorFlow's INFO lines from calls that lag_tf reports itself (a strategy's creation, every
checkpoint save) are dropped where those calls are made.

TF 2.21 prints its oneDNN banner from C++ before its log level is read (TF_CPP_MIN_LOG_LEVEL
does not stop it), so the import is run with file descriptor 2 sent to a temporary file, which
is replayed if the import fails. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from typing import NoReturn, Sequence

from absl import logging as absl_logging

EXIT_BAD_INPUT = 2  # The binaries' exit code for bad input (flags, files, values).


def one_line(message: str) -> str:
  """Collapses a multi-line message (gin's, TF's) into one line.

  Gin appends "In call to configurable 'X' (<function X at 0x...>)" for every configurable on
  the call chain; our messages already name the binding (e.g. `Trainer.train_steps=-5`), so
  the chain is dropped.
  """
  parts = [part.strip() for part in str(message).splitlines()
           if part.strip() and not part.strip().startswith("In call to configurable")]
  return " | ".join(parts)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
  """What a binary does on an error: one `error:` line on stderr, then exit `code`."""
  print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
  sys.exit(code)


def verbose_requested(argv: Sequence[str]) -> bool:
  """True if argv asks absl for more than INFO (`-v N`, `-vN`, `--verbosity=N`, N >= 1)."""
  for index, arg in enumerate(argv):
    value = None
    if arg.startswith("--verbosity=") or arg.startswith("--v="):
      value = arg.split("=", 1)[1]
    elif arg in ("-v", "--verbosity", "--v") and index + 1 < len(argv):
      value = argv[index + 1]
    elif arg.startswith("-v") and arg[2:].lstrip("-").isdigit():
      value = arg[2:]
    try:
      if value is not None and int(value) >= 1:
        return True
    except ValueError:
      pass
  return False


@contextlib.contextmanager
def native_stderr_hidden(hidden: bool = True):
  """Sends what native code writes to stderr during the block to a temporary file; replays it
  if the block raises (an import error stays visible)."""
  if not hidden:
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  capture = tempfile.TemporaryFile()
  os.dup2(capture.fileno(), 2)
  failed = False
  try:
    yield
  except BaseException:
    failed = True
    raise
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    if failed:
      capture.seek(0)
      sys.stderr.write(capture.read().decode("utf-8", "replace"))
    capture.close()


def _not_library_chatter(record: logging.LogRecord) -> bool:
  path = record.pathname.replace(os.sep, "/")
  return not (path.endswith("gin/resource_reader.py") or
              ("/tensorflow_datasets/" in path and record.levelno <= logging.WARNING))


def hide_gin_file_lookups(hidden: bool = True) -> None:
  """gin logs one INFO line per include it resolves (and an ERROR-looking 'Path not found'
  before finding it in the search path), tfds one per dataset it opens: off unless verbose."""
  # gin logs through the root logger, tfds through absl's; a logger's filter sees only its own.
  for logger in (logging.getLogger(), logging.getLogger("absl")):
    if hidden:
      logger.addFilter(_not_library_chatter)
    else:
      logger.removeFilter(_not_library_chatter)


def _not_tensorflow_info(record: logging.LogRecord) -> bool:
  path = record.pathname.replace(os.sep, "/")
  return not ("/tensorflow/" in path and record.levelno < logging.WARNING)


@contextlib.contextmanager
def tensorflow_info_hidden():
  """Drops the INFO lines TensorFlow's Python code logs during the block (through TF's logger
  or absl's); its warnings and errors pass, and everything shows at `-v 1`."""
  if absl_logging.get_verbosity() >= 1:
    yield
    return
  loggers = (logging.getLogger("tensorflow"), logging.getLogger("absl"))
  for logger in loggers:
    logger.addFilter(_not_tensorflow_info)
  try:
    yield
  finally:
    for logger in loggers:
      logger.removeFilter(_not_tensorflow_info)
