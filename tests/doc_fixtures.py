"""The user documentation as tests read it: README.md and docs/*.md, their fenced blocks and
their sections."""

import glob
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = "README.md"
USAGE = "docs/usage.md"
DESIGN = "docs/design.md"
RESULTS = "docs/results.md"
# A fence opens with ``` and an optional language, and closes with ``` alone on its line.
_FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```[ \t]*$", re.S | re.M)


def read(path: str) -> str:
  with open(os.path.join(REPO, path), encoding="utf-8") as f:
    return f.read()


def documents():
  """{path: text} of README.md and every docs/*.md, README first."""
  paths = [README] + sorted(os.path.relpath(p, REPO)
                            for p in glob.glob(os.path.join(REPO, "docs", "*.md")))
  return {path: read(path) for path in paths}


def code_blocks(text: str, language=None):
  """The fenced blocks of `text` in order, their bodies without the closing newline; only
  those in `language` ("" for bare fences) if given."""
  return [body.rstrip("\n") for lang, body in _FENCE.findall(text)
          if language is None or lang == language]


def without_code(text: str) -> str:
  return _FENCE.sub("", text)


def section(text: str, heading: str) -> str:
  """From the `## heading` line to the next heading of level two (or the end)."""
  start = text.index(f"\n## {heading}\n")
  end = text.find("\n## ", start + 1)
  return text[start:] if end < 0 else text[start:end]
