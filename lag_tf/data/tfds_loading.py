"""Opening tfds datasets: prepare the embedded corpus offline, read a text split.

Every tfds failure a user can cause (unknown name or config, data not prepared, unknown
split) surfaces here as a one-line ValueError naming the bad value; the tfds message follows
as the cause. An unknown feature: LanguageModelingData.builder.
"""

from __future__ import annotations

import platform

from absl import logging
import tensorflow as tf
import tensorflow_datasets as tfds

from lag_tf.data import stdlib_corpus  # Registers python_stdlib_corpus with tfds.

# Builders whose data is on this machine: preparing them needs no network.
OFFLINE_PREPARABLE = frozenset({stdlib_corpus.DATASET_NAME})


def base_name(name: str) -> str:
  """'c4/en:3.1.0' -> 'c4'."""
  return name.split(':')[0].split('/')[0]


def load_or_prepare(name: str, data_dir: str | None = None) -> tfds.core.DatasetBuilder:
  """The tfds builder of `name` (e.g. 'python_stdlib_corpus/small', 'c4/en:3.1.0').

  The embedded corpus is prepared in `data_dir` on first use (offline, through the API,
  never from GCS). Other datasets must already be prepared in `data_dir`; their absence
  is reported when a split is read, so that `tfds.testing.mock_data` can stand in for
  them in tests.
  """
  if not isinstance(name, str) or not name:
    raise ValueError(f'dataset name must be a non-empty string, got {name!r}')
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except (tfds.core.registered.DatasetNotFoundError, ValueError) as error:
    raise ValueError(
        f'unknown tfds dataset {name!r}: {str(error).splitlines()[0]}') from error
  if base_name(name) in OFFLINE_PREPARABLE:
    try:
      builder.download_and_prepare(
          download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    except OSError:
      # Another process (e.g. the other worker of a multi-worker run sharing data_dir)
      # prepared it at the same time and renamed its directory into place first.
      builder = tfds.builder(name, data_dir=data_dir)
      if not builder.is_prepared():
        raise
    _warn_if_prepared_by_another_python(builder)
  return builder


def _warn_if_prepared_by_another_python(builder: tfds.core.DatasetBuilder) -> None:
  prepared_by = builder.info.metadata.get('python_version')
  if prepared_by is not None and prepared_by != platform.python_version():
    logging.warning(
        '%s in %s was prepared from the stdlib of Python %s, this is Python %s: the '
        'corpus differs from what this interpreter would produce.',
        builder.info.full_name, builder.data_dir, prepared_by, platform.python_version())


def split_num_bytes(builder: tfds.core.DatasetBuilder, split: str) -> int | None:
  """Size on disk of `split` (slices like 'train[:1%]' allowed), None if unknown."""
  try:
    split_info = builder.info.splits[split]
    num_bytes = split_info.num_bytes
    if not num_bytes and '[' in split:  # tfds knows no size for a slice: scale the split.
      full_split = builder.info.splits[split.split('[')[0]]
      num_bytes = full_split.num_bytes * split_info.num_examples // max(
          full_split.num_examples, 1)
  except (KeyError, ValueError, TypeError, AttributeError):
    return None
  return int(num_bytes) if num_bytes else None


def read_text_split(
    builder: tfds.core.DatasetBuilder,
    split: str,
    text_key: str,
    *,
    shuffle_files: bool = False,
    seed: int = 0,
) -> tf.data.Dataset:
  """A dataset of scalar tf.string documents: feature `text_key` of `split` (a feature of the
  builder: LanguageModelingData.builder checks it before anything reads a split).

  With shuffle_files the file order comes from `seed`, so the stream is deterministic
  (tfds reshuffles per iteration, from the same seed, so a repeated stream is too).
  """
  read_config = tfds.ReadConfig(shuffle_seed=seed)
  try:
    documents = builder.as_dataset(
        split=split, shuffle_files=shuffle_files, read_config=read_config)
  except AssertionError as error:  # tfds' way to say the data is not there.
    raise ValueError(
        f'dataset {builder.info.full_name} is not prepared in data_dir='
        f'{str(builder.data_dir_root)!r}: {str(error).splitlines()[0]}') from error
  except (KeyError, ValueError) as error:
    raise ValueError(
        f'cannot read split {split!r} of {builder.info.full_name}: '
        f'{str(error).splitlines()[0]}') from error
  return documents.map(
      lambda example: example[text_key], num_parallel_calls=tf.data.AUTOTUNE)
