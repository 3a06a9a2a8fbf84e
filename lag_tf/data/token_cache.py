"""Tokenize a (small) split once and keep its flat token stream as an .npy file.

The file name holds the dataset (name/config/version), the split, the text feature and
the tokenizer fingerprint, so changing any of them makes a new file instead of reusing
a stale one. Files are written to a temporary name and renamed, so workers tokenizing
at the same time (multi-worker runs) never read a half-written file. tf.io.gfile makes
gs:// work.
"""

from __future__ import annotations

import io
import os
import re
import time

from absl import logging
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from lag_tf import atomic_file
from lag_tf.data import packing
from lag_tf.data import tfds_loading
from lag_tf.data import tokenizers

CACHE_SUBDIRECTORY = 'lag_tf_token_cache'


def _safe(name: str) -> str:
  return re.sub(r'[^A-Za-z0-9_.=-]+', '_', name).strip('_')


def cache_file_path(
    cache_dir: str, dataset_full_name: str, split: str, text_key: str,
    tokenizer_fingerprint: str
) -> str:
  """e.g. <cache_dir>/python_stdlib_corpus_small_1.0.0-train-text-byte260.npy"""
  file_name = '-'.join(_safe(part) for part in (
      dataset_full_name, split, text_key, tokenizer_fingerprint)) + '.npy'
  return os.path.join(cache_dir, file_name)


def tokenize_split(
    builder: tfds.core.DatasetBuilder, split: str, text_key: str,
    tokenizer: tokenizers.Tokenizer
) -> np.ndarray:
  """The split's documents in tfds order, tokenized, each followed by eos; 1-D."""
  texts = tfds_loading.read_text_split(builder, split, text_key)
  runs = list(packing.tokenized_groups(texts, tokenizer).as_numpy_iterator())
  # uint16 halves memory when every id fits (the byte tokenizer, most spm models).
  dtype = np.uint16 if tokenizer.vocab_size <= np.iinfo(np.uint16).max + 1 else np.int32
  if not runs:
    return np.zeros([0], dtype)
  return np.concatenate(runs).astype(dtype)


def load_or_build(
    builder: tfds.core.DatasetBuilder, split: str, text_key: str,
    tokenizer: tokenizers.Tokenizer, cache_dir: str | None = None
) -> np.ndarray:
  """The split's flat token stream, from the cache file or tokenized and cached now."""
  # Default: <data_dir>/lag_tf_token_cache, beside the prepared datasets.
  cache_dir = cache_dir or os.path.join(str(builder.data_dir_root), CACHE_SUBDIRECTORY)
  path = cache_file_path(
      cache_dir, builder.info.full_name, split, text_key, tokenizer.fingerprint)
  if tf.io.gfile.exists(path):
    with tf.io.gfile.GFile(path, 'rb') as f:
      return np.load(io.BytesIO(f.read()))
  started = time.time()
  tokens = tokenize_split(builder, split, text_key, tokenizer)
  tf.io.gfile.makedirs(cache_dir)
  buffer = io.BytesIO()
  np.save(buffer, tokens)
  atomic_file.write_bytes(path, buffer.getvalue())
  logging.info('Tokenized %s split %r: %d tokens in %.1f s, cached at %s',
               builder.info.full_name, split, tokens.size, time.time() - started, path)
  return tokens
