"""The language-modeling input pipeline: tfds text -> packed, masked, distributed batches.

Example number g of the (infinite) train stream is a pure function of (seed, g); the
eval stream is the held-out split's windows in order. Each input pipeline produces the
global examples that tf.distribute will hand to its replicas (see sharding.py), so any
strategy sees the same global batches, and resuming at start_example continues the
stream exactly.

Two ways to feed windows (`packing`):
  'cached'    Tokenize the split once into a flat token file (token_cache.py); window
              ids come from a stateless per-epoch permutation: epoch = g // N, window =
              index_shuffle(g % N, seed, epoch). Random access, so resume is free and
              every pipeline computes only its own examples.
  'streaming' For corpora too big to cache (c4/en, wikipedia): tfds reads the files in
              a seeded order, a seeded shuffle buffer mixes documents, tf.data
              tokenizes and cuts windows on the fly. Deterministic, but resuming costs
              re-reading and skipping the start_example examples before it, and every
              pipeline reads the whole stream and keeps its share.
  'auto'      'cached' if the split is at most max_cache_bytes on disk, else
              'streaming'.
"""

from __future__ import annotations

import numbers

from absl import logging
import gin
import tensorflow as tf
import tensorflow_datasets as tfds

from lag_tf import gin_registry
from lag_tf.data import objectives
from lag_tf.data import packing
from lag_tf.data import sharding
from lag_tf.data import tfds_loading
from lag_tf.data import token_cache
from lag_tf.data import tokenizers

PACKING_MODES = ('auto', 'cached', 'streaming')
_SHUFFLE_STREAM = 3  # index_shuffle seed component; distinct from the masking streams


def _check_positive_int(name: str, value) -> None:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
    raise ValueError(f'{name} must be a positive int, got {value!r}')


@gin_registry.configurable
class LanguageModelingData:
  """Packed language-modeling batches (MLM or causal) from a tfds text dataset."""

  def __init__(
      self,
      dataset_name: str = 'python_stdlib_corpus',
      data_dir: str | None = None,
      train_split: str = 'train',
      eval_split: str = 'validation',
      text_key: str = 'text',
      tokenizer: tokenizers.Tokenizer | None = None,
      sequence_length: int = 128,
      mlm_probability: float = 0.15,
      seed: int = 0,
      packing: str = 'auto',
      max_cache_bytes: int = 256 * 2**20,
      cache_dir: str | None = None,
      shuffle_buffer_size: int = 1024,
  ):
    """
    Args:
      dataset_name: tfds name, optionally with config and version ('c4/en:3.1.0').
      data_dir: tfds data dir (None: tfds' default). The embedded corpus is prepared
        there on first use; other datasets must already be prepared there.
      train_split, eval_split: tfds split names or slices ('train[:99%]').
      text_key: the feature holding the document text.
      tokenizer: None for `make_tokenizer()` (gin-configurable; byte-level default).
      sequence_length: tokens per example (L).
      mlm_probability: share of positions selected by MLM masking.
      seed: seeds the train order, the streaming shuffles and the masking.
      packing: 'auto', 'cached' or 'streaming' (see the module docstring).
      max_cache_bytes: 'auto' caches a split whose tfds files are at most this size
        (decided before tokenizing; the byte tokenizer makes ~1 token per byte).
      cache_dir: where token caches go (None: <data_dir>/lag_tf_token_cache).
      shuffle_buffer_size: documents mixed by the streaming train path (1: no mixing).
    """
    # gin 0.5.0 hands a `%gin.REQUIRED` macro that was never set to the callee as a
    # sentinel (only gin.finalize() reports it), so check here too.
    for name, value in list(locals().items()):
      if value is gin.REQUIRED:
        hint = ' (bind DATA_DIR)' if name == 'data_dir' else ''
        raise ValueError(f'{name} is gin.REQUIRED but was not set{hint}')
    if not isinstance(dataset_name, str) or not dataset_name:
      raise ValueError(f'dataset_name must be a non-empty string, got {dataset_name!r}')
    try:
      tfds.builder_cls(tfds_loading.base_name(dataset_name))  # Fails early and cheaply on a typo.
    except tfds.core.registered.DatasetNotFoundError as error:
      raise ValueError(f'unknown tfds dataset {dataset_name!r}') from error
    _check_positive_int('sequence_length', sequence_length)
    _check_positive_int('max_cache_bytes', max_cache_bytes)
    _check_positive_int('shuffle_buffer_size', shuffle_buffer_size)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
      raise ValueError(f'seed must be an int, got {seed!r}')
    if packing not in PACKING_MODES:
      raise ValueError(f'unknown packing {packing!r}; expected one of {PACKING_MODES}')
    self.dataset_name = dataset_name
    self.data_dir = data_dir
    self.train_split = train_split
    self.eval_split = eval_split
    self.text_key = text_key
    self.tokenizer = tokenizer if tokenizer is not None else tokenizers.make_tokenizer()
    self.sequence_length = int(sequence_length)
    self.seed = int(seed)
    self.packing = packing
    self.max_cache_bytes = max_cache_bytes
    self.cache_dir = cache_dir
    self.shuffle_buffer_size = shuffle_buffer_size
    self.masking = objectives.MaskingSpec(
        mask_id=self.tokenizer.mask_id,
        special_ids=self.tokenizer.special_ids,
        replacement_ids=self.tokenizer.replacement_ids,
        probability=mlm_probability)
    self._builder = None
    self._cached_streams = {}  # split -> (flat tokens tf.Tensor, number of windows)

  # ---------------------------------------------------------------- small facts

  @property
  def vocab_size(self) -> int:
    return self.tokenizer.vocab_size

  @property
  def builder(self) -> tfds.core.DatasetBuilder:
    if self._builder is None:
      builder = tfds_loading.load_or_prepare(self.dataset_name, self.data_dir)
      if self.text_key not in builder.info.features:
        raise ValueError(
            f'text_key {self.text_key!r} is not a feature of {builder.info.full_name}; '
            f'features: {sorted(builder.info.features.keys())}')
      self._builder = builder
    return self._builder

  def uses_token_cache(self, split: str) -> bool:
    """Whether `split` is fed from a token cache ('cached') or streamed."""
    if self.packing != 'auto':
      return self.packing == 'cached'
    num_bytes = tfds_loading.split_num_bytes(self.builder, split)
    return num_bytes is not None and num_bytes <= self.max_cache_bytes

  def num_examples(self, split: str) -> int:
    """Windows (examples) in one pass over a cached split."""
    return self._cached_stream(split)[1]

  def describe(self) -> dict:
    """What data this is, for experiment records (prepares the dataset if needed)."""
    info = self.builder.info
    description = {
        'dataset': info.full_name,
        'data_dir': str(self.builder.data_dir_root),
        'train_split': self.train_split,
        'eval_split': self.eval_split,
        'tokenizer': self.tokenizer.fingerprint,
        'vocab_size': self.vocab_size,
        'sequence_length': self.sequence_length,
        'seed': self.seed,
        'mlm_probability': self.masking.probability,
        'packing': {split: 'cached' if self.uses_token_cache(split) else 'streaming'
                    for split in (self.train_split, self.eval_split)},
    }
    if info.metadata and 'splits' in info.metadata:  # the embedded corpus
      description['python_version'] = info.metadata.get('python_version')
      description['sha256'] = {split: meta['sha256']
                               for split, meta in info.metadata['splits'].items()}
    return description

  # ---------------------------------------------------------------- datasets

  def train_dataset(
      self,
      input_context: tf.distribute.InputContext | None,
      global_batch_size: int,
      objective: str,
      start_example: int = 0,
  ) -> tf.data.Dataset:
    """Infinite per-replica batches {'inputs', 'targets', 'weights'} of [b, L].

    b = global_batch_size // num_replicas_in_sync. start_example (a multiple of
    global_batch_size) is the number of examples consumed before, for exact resume.
    """
    objectives.check_objective(objective)
    layout = sharding.ShardLayout.from_input_context(input_context, global_batch_size)
    if (isinstance(start_example, bool) or not isinstance(start_example, numbers.Integral)
        or start_example < 0 or start_example % global_batch_size):
      raise ValueError(
          f'start_example {start_example!r} is not a non-negative multiple of '
          f'global_batch_size {global_batch_size}')
    if self.uses_token_cache(self.train_split):
      batches = self._cached_batches(
          self.train_split, layout, objective, int(start_example),
          stream=objectives.TRAIN_STREAM, shuffle=True, num_local_batches=None)
    else:
      batches = self._streamed_batches(
          self.train_split, layout, objective, int(start_example),
          stream=objectives.TRAIN_STREAM, train=True, num_global_batches=None)
    return self._finish(batches)

  def eval_dataset(
      self,
      input_context: tf.distribute.InputContext | None,
      global_batch_size: int,
      num_batches: int,
      objective: str,
  ) -> tf.data.Dataset:
    """Exactly num_batches global batches of the held-out split, the same every call.

    Global example g is the g-th window of the eval split in order (wrapping around if
    the split has fewer windows); its masking is seeded apart from train.
    """
    objectives.check_objective(objective)
    layout = sharding.ShardLayout.from_input_context(input_context, global_batch_size)
    _check_positive_int('num_batches', num_batches)
    if self.uses_token_cache(self.eval_split):
      num_windows = self._cached_stream(self.eval_split)[1]
      if num_batches * global_batch_size > num_windows:
        logging.warning(
            'eval asks for %d examples but %s has %d windows: examples repeat.',
            num_batches * global_batch_size, self.eval_split, num_windows)
      batches = self._cached_batches(
          self.eval_split, layout, objective, 0, stream=objectives.EVAL_STREAM,
          shuffle=False, num_local_batches=num_batches * layout.replicas_per_pipeline)
    else:
      batches = self._streamed_batches(
          self.eval_split, layout, objective, 0, stream=objectives.EVAL_STREAM,
          train=False, num_global_batches=num_batches)
    return self._finish(batches)

  # ---------------------------------------------------------------- internals

  def _finish(self, batches: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    # Pipelines select their own global examples (sharding.py); tf.distribute must not
    # shard again.
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF)
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)

  def _cached_stream(self, split: str) -> tuple[tf.Tensor, int]:
    if split not in self._cached_streams:
      tokens = token_cache.load_or_build(
          self.builder, split, self.text_key, self.tokenizer, self.cache_dir)
      num_windows = packing.num_windows(tokens.size, self.sequence_length)
      if num_windows == 0:
        raise ValueError(
            f'split {split!r} of {self.dataset_name} has {tokens.size} tokens, fewer '
            f'than sequence_length + 1 = {self.sequence_length + 1}')
      with tf.init_scope():  # An eager tensor even if called while tracing.
        self._cached_streams[split] = (tf.constant(tokens), num_windows)
    return self._cached_streams[split]

  def _cached_batches(
      self, split, layout, objective, start_example, *, stream, shuffle,
      num_local_batches
  ) -> tf.data.Dataset:
    tokens, num_windows = self._cached_stream(split)
    seed, length, spec = self.seed, self.sequence_length, self.masking

    def make_batch(local_batch: tf.Tensor):
      example_ids = layout.local_batch_global_ids(local_batch, start_example)
      position = example_ids % num_windows
      if shuffle:
        epoch = example_ids // num_windows
        # One permutation per (seed, epoch). The batched form of the public
        # tf.random.experimental.index_shuffle pads an [n, 2] seed along the wrong
        # axis (TF 2.21), so call the raw op with [n, 3] seeds directly.
        permutation_seeds = tf.stack([
            tf.fill(tf.shape(epoch), tf.constant(seed, tf.int64)), epoch,
            tf.fill(tf.shape(epoch), tf.constant(_SHUFFLE_STREAM, tf.int64))
        ], axis=1)
        window_ids = tf.raw_ops.RandomIndexShuffle(
            index=position, seed=permutation_seeds,
            max_index=tf.constant(num_windows - 1, tf.int64), rounds=4)
      else:
        window_ids = position
      windows = packing.gather_windows(tokens, window_ids, length)
      return objectives.features_for(objective, windows, example_ids, seed, stream, spec)

    if num_local_batches is None:
      local_batches = tf.data.Dataset.counter(dtype=tf.int64)
    else:
      local_batches = tf.data.Dataset.range(num_local_batches, dtype=tf.int64)
    return local_batches.map(
        make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

  def _streamed_batches(
      self, split, layout, objective, start_example, *, stream, train,
      num_global_batches
  ) -> tf.data.Dataset:
    seed, spec = self.seed, self.masking
    per_replica = layout.per_replica_batch_size
    texts = tfds_loading.read_text_split(
        self.builder, split, self.text_key, shuffle_files=train, seed=seed)
    texts = texts.repeat()  # eval too: a split smaller than asked for wraps around
    if train and self.shuffle_buffer_size > 1:
      texts = texts.shuffle(self.shuffle_buffer_size, seed=seed)
    windows = packing.windows_from_groups(
        packing.tokenized_groups(texts, self.tokenizer), self.sequence_length)
    # Chunk c holds global examples c*b .. c*b + b - 1 (replica c % R of step c // R).
    chunks = windows.batch(per_replica, drop_remainder=True).enumerate()
    if num_global_batches is not None:
      chunks = chunks.take(num_global_batches * layout.num_replicas)
    chunks = chunks.skip(start_example // per_replica)
    chunks = chunks.filter(lambda chunk, _: layout.owns_chunk(chunk))

    def make_batch(chunk: tf.Tensor, chunk_windows: tf.Tensor):
      example_ids = chunk * per_replica + tf.range(per_replica, dtype=tf.int64)
      return objectives.features_for(
          objective, chunk_windows, example_ids, seed, stream, spec)

    return chunks.map(make_batch, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
