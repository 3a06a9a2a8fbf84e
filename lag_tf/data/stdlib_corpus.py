"""tfds builder `python_stdlib_corpus`: the Python standard library's own sources as text.

This is the default corpus: real text that exists on every fresh machine, so the default
experiment needs no download. Each document is one source or documentation file of the
running interpreter's standard library (`.py`, `.txt`, `.rst`; ~1,900 files, ~32 MB on
CPython 3.11). The corpus therefore depends on the Python version; the prepared dataset
records the version, the file list and a sha256 content hash in `info.metadata` so a run
can say exactly what it trained on.

Importing this module registers the builder with tfds (tfds registers on class creation,
and only builders defined inside a package). Prepare offline through the API, not the
`tfds` CLI (which needs apache_beam):

    builder = tfds.builder('python_stdlib_corpus/small', data_dir=...)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))

`lag_tf.data.tfds_loading.load_or_prepare` does this for you.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import sysconfig

import tensorflow_datasets as tfds

DATASET_NAME = 'python_stdlib_corpus'

_FILE_SUFFIXES = ('.py', '.txt', '.rst')
# Third-party packages are not the standard library, and caches are not text.
_SKIPPED_DIRECTORIES = frozenset({'site-packages', 'dist-packages', '__pycache__'})
_VALIDATION_PERCENT = 2


@dataclasses.dataclass(frozen=True)
class CorpusFile:
  """One document: its path relative to the stdlib root and its decoded text."""
  path: str
  text: str

  @property
  def num_bytes(self) -> int:
    return len(self.text.encode('utf-8'))


def stdlib_root() -> str:
  """The directory of the running interpreter's standard library."""
  return sysconfig.get_paths()['stdlib']


def split_of(relative_path: str) -> str:
  """'validation' for ~2% of files, 'train' for the rest: a stable hash of the path.

  A hash (not a random draw, not the file order) keeps a file in the same split on every
  machine and when other files come or go between Python versions.
  """
  digest = hashlib.sha256(relative_path.encode('utf-8')).digest()
  bucket = int.from_bytes(digest[:8], 'big') % 100
  return 'validation' if bucket < _VALIDATION_PERCENT else 'train'


def list_corpus_files(root: str) -> list[CorpusFile]:
  """All decodable corpus files under `root`, sorted by relative path (deterministic)."""
  corpus = []
  for directory, subdirectories, filenames in os.walk(root):
    # Pruning in place stops os.walk from descending into skipped directories.
    subdirectories[:] = [d for d in subdirectories if d not in _SKIPPED_DIRECTORIES]
    for filename in filenames:
      if not filename.endswith(_FILE_SUFFIXES):
        continue
      full_path = os.path.join(directory, filename)
      if not os.path.isfile(full_path):  # dangling symlinks
        continue
      with open(full_path, 'rb') as f:
        content = f.read()
      try:
        text = content.decode('utf-8')
      except UnicodeDecodeError:
        # A few test fixtures are deliberately in legacy encodings; they are not text we
        # can store as UTF-8 without guessing.
        continue
      relative_path = os.path.relpath(full_path, root).replace(os.sep, '/')
      corpus.append(CorpusFile(relative_path, text))
  corpus.sort(key=lambda corpus_file: corpus_file.path)
  return corpus


def content_sha256(files: list[CorpusFile]) -> str:
  """sha256 over (path, length, bytes) of every file, in order: identifies the corpus."""
  hasher = hashlib.sha256()
  for corpus_file in files:
    content = corpus_file.text.encode('utf-8')
    hasher.update(corpus_file.path.encode('utf-8') + b'\0')
    hasher.update(str(len(content)).encode('ascii') + b'\0')
    hasher.update(content)
  return hasher.hexdigest()


def _first_files_within(files: list[CorpusFile], byte_budget: int) -> list[CorpusFile]:
  """The longest prefix of `files` whose size stays within `byte_budget` (at least one)."""
  selected, total = [], 0
  for corpus_file in files:
    if selected and total + corpus_file.num_bytes > byte_budget:
      break
    selected.append(corpus_file)
    total += corpus_file.num_bytes
  return selected


def split_metadata(files: list[CorpusFile]) -> dict:
  return {
      'num_files': len(files),
      'num_bytes': sum(f.num_bytes for f in files),
      'sha256': content_sha256(files),
      'files': [f.path for f in files],
  }


@dataclasses.dataclass(eq=False)
class StdlibCorpusConfig(tfds.core.BuilderConfig):
  """Which files of the stdlib go in. A budget of None takes every file of the split.

  A budget keeps the first files (sorted by path) of each split up to that many bytes,
  so a small config is a deterministic subset with a non-empty validation split.
  """
  train_byte_budget: int | None = None
  validation_byte_budget: int | None = None


class PythonStdlibCorpus(tfds.core.GeneratorBasedBuilder):
  """The Python standard library's source and documentation files, one per example."""

  VERSION = tfds.core.Version('1.0.0')
  RELEASE_NOTES = {'1.0.0': 'Initial release.'}
  BUILDER_CONFIGS = [
      StdlibCorpusConfig(
          name='full',
          description='Every decodable .py/.txt/.rst file of the stdlib (~32 MB).'),
      StdlibCorpusConfig(
          name='small',
          description='First files by path of each split: ~1.5 MB train, ~0.2 MB '
          'validation. For tests and CI-sized runs.',
          train_byte_budget=1_500_000,
          validation_byte_budget=200_000),
  ]
  DEFAULT_CONFIG_NAME = 'full'

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=(
            'Source and documentation files of the Python standard library of the '
            'interpreter that prepared the dataset (see metadata: python_version, '
            'files, sha256). Split by a stable hash of the relative path: ~2% of '
            'files are validation.'),
        features=tfds.features.FeaturesDict({
            'text': tfds.features.Text(),
            'path': tfds.features.Text(),
        }),
        homepage='https://docs.python.org/3/library/',
        metadata=tfds.core.MetadataDict(),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the corpus is on this machine.
    root = stdlib_root()
    files = list_corpus_files(root)
    files_by_split = {
        'train': [f for f in files if split_of(f.path) == 'train'],
        'validation': [f for f in files if split_of(f.path) == 'validation'],
    }
    budgets = {
        'train': self.builder_config.train_byte_budget,
        'validation': self.builder_config.validation_byte_budget,
    }
    for split, budget in budgets.items():
      if budget is not None:
        files_by_split[split] = _first_files_within(files_by_split[split], budget)
    # tfds writes info.metadata to metadata.json when preparation finishes.
    self.info.metadata['python_version'] = platform.python_version()
    self.info.metadata['python_implementation'] = platform.python_implementation()
    self.info.metadata['stdlib_root'] = root
    self.info.metadata['splits'] = {
        split: split_metadata(split_files)
        for split, split_files in files_by_split.items()
    }
    return {
        split: self._generate_examples(split_files)
        for split, split_files in files_by_split.items()
    }

  def _generate_examples(self, files: list[CorpusFile]):
    for corpus_file in files:
      yield corpus_file.path, {'text': corpus_file.text, 'path': corpus_file.path}
