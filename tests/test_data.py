"""Tests of lag_tf.data: corpus builder, tokenizers, packing, masking, sharding, gin."""

import importlib.util  # noqa: F401  (gin reads files through it; docs/design.md)
import os
import pathlib

import gin
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from lag_tf import data
from lag_tf.data import objectives
from lag_tf.data import stdlib_corpus
from lag_tf.data import token_cache

SMALL_CORPUS = 'python_stdlib_corpus/small'
GIN_DATA_DIR = pathlib.Path(__file__).resolve().parents[1] / 'gin' / 'data'


def small_data(data_dir, **kwargs):
  kwargs.setdefault('sequence_length', 32)
  return data.LanguageModelingData(SMALL_CORPUS, data_dir=data_dir, **kwargs)


def take(dataset, count):
  return [{k: v.numpy() for k, v in batch.items()} for batch in dataset.take(count)]


def assert_batches_equal(expected, actual):
  assert len(expected) == len(actual)
  for want, got in zip(expected, actual):
    assert want.keys() == got.keys()
    for key in want:
      np.testing.assert_array_equal(want[key], got[key], err_msg=key)


def input_context(num_pipelines, pipeline_id, num_replicas):
  return tf.distribute.InputContext(
      num_input_pipelines=num_pipelines, input_pipeline_id=pipeline_id,
      num_replicas_in_sync=num_replicas)


def global_batches(make_dataset, num_replicas, num_pipelines, steps):
  """Global batches as tf.distribute assembles them from every pipeline's batches.

  Pipeline p serves replicas p*r .. p*r + r - 1 and hands its consecutive local
  batches to them round-robin (verified in test_data_distribution.py).
  """
  r = num_replicas // num_pipelines
  per_pipeline = [take(make_dataset(input_context(num_pipelines, p, num_replicas)), steps * r)
                  for p in range(num_pipelines)]
  batches = []
  for step in range(steps):
    replicas = [per_pipeline[p][step * r + k] for p in range(num_pipelines) for k in range(r)]
    batches.append({key: np.concatenate([rb[key] for rb in replicas])
                    for key in replicas[0]})
  return batches


# ------------------------------------------------------------------ corpus builder


def test_small_corpus_prepares_offline_and_records_files(data_dir):
  builder = data.load_or_prepare(SMALL_CORPUS, data_dir)  # reloads from disk
  metadata = builder.info.metadata
  assert metadata['python_version']
  for split in ('train', 'validation'):
    split_meta = metadata['splits'][split]
    assert split_meta['num_files'] == builder.info.splits[split].num_examples > 0
    assert split_meta['files'] == sorted(split_meta['files'])
    assert all(stdlib_corpus.split_of(path) == split for path in split_meta['files'])
    # The recorded hash is the hash of what was stored.
    stored = sorted(
        (ex['path'].decode(), ex['text'].decode())
        for ex in tfds.as_numpy(builder.as_dataset(split=split)))
    assert [path for path, _ in stored] == split_meta['files']
    files = [stdlib_corpus.CorpusFile(path, text) for path, text in stored]
    assert stdlib_corpus.content_sha256(files) == split_meta['sha256']
    assert sum(f.num_bytes for f in files) == split_meta['num_bytes']
  assert 500_000 < metadata['splits']['train']['num_bytes'] <= 1_500_000
  assert not any('site-packages' in p or '__pycache__' in p
                 for p in metadata['splits']['train']['files'])


def test_split_of_is_stable_and_holds_out_about_two_percent():
  paths = [f'pkg{i}/module{i}.py' for i in range(5000)]
  held_out = [p for p in paths if stdlib_corpus.split_of(p) == 'validation']
  assert 0.01 < len(held_out) / len(paths) < 0.03
  assert held_out == [p for p in paths if stdlib_corpus.split_of(p) == 'validation']


# ------------------------------------------------------------------ tokenizers


def test_byte_tokenizer_round_trips_and_matches_tf():
  tokenizer = data.ByteTokenizer()
  text = 'def naïve(x):\n    return "λ" * x  # ✓'
  ids = tokenizer.encode(text)
  assert ids.dtype == np.int32 and ids.min() >= 4 and ids.max() < tokenizer.vocab_size
  assert tokenizer.decode(ids) == text
  assert tokenizer.decode(np.concatenate([[1], ids, [2, 0, 0]])) == text
  ragged = tokenizer.tf_encode(tf.constant([text, '', 'ab']))
  np.testing.assert_array_equal(ragged[0].numpy(), ids)
  assert ragged[1].numpy().size == 0
  assert (tokenizer.vocab_size, tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id,
          tokenizer.mask_id) == (260, 0, 1, 2, 3)
  assert tokenizer.fingerprint == data.ByteTokenizer().fingerprint == 'byte260'
  assert set(tokenizer.replacement_ids) == set(range(4, 260))


@pytest.fixture(scope='session')
def spm_model_path(tmp_path_factory):
  """A tiny SentencePiece model trained offline on a bit of stdlib source."""
  import sentencepiece
  import textwrap  # its source is the training text
  directory = tmp_path_factory.mktemp('spm')
  text_file = directory / 'train.txt'
  text_file.write_text(pathlib.Path(textwrap.__file__).read_text())
  sentencepiece.SentencePieceTrainer.train(
      input=str(text_file), model_prefix=str(directory / 'tiny'), vocab_size=100,
      user_defined_symbols=['[MASK]'], minloglevel=2)
  return str(directory / 'tiny.model')


def test_sentencepiece_tokenizer_ids_and_reserved_pad(spm_model_path):
  tokenizer = data.make_tokenizer('sentencepiece', spm_model_path)
  # The model has unk/bos/eos and [MASK] but no pad: pad is reserved past the pieces.
  assert tokenizer.num_pieces == 100 and tokenizer.vocab_size == 101
  assert tokenizer.pad_id == 100
  assert tokenizer.mask_id < 100  # the [MASK] piece
  assert len({tokenizer.pad_id, tokenizer.bos_id, tokenizer.eos_id,
              tokenizer.mask_id}) == 4
  text = 'def wrap(text, width):\n    return text'
  ids = tokenizer.encode(text)
  assert tokenizer.mask_id not in ids and ids.max() < tokenizer.vocab_size
  assert tokenizer.decode(ids).split() == text.split()
  ragged = tokenizer.tf_encode(tf.constant([text, 'return']))
  np.testing.assert_array_equal(ragged[0].numpy(), ids)
  assert tokenizer.fingerprint.startswith('spm101-')
  assert not set(tokenizer.special_ids) & set(tokenizer.replacement_ids)


def test_sentencepiece_through_the_pipeline(data_dir, spm_model_path, tmp_path):
  tokenizer = data.SentencePieceTokenizer(spm_model_path)
  lm_data = small_data(data_dir, tokenizer=tokenizer, cache_dir=str(tmp_path))
  assert lm_data.vocab_size == 101
  batch = take(lm_data.train_dataset(None, 8, 'mlm'), 1)[0]
  assert batch['inputs'].shape == (8, 32)
  assert batch['inputs'].max() < 101 and batch['targets'].max() < 101
  assert (batch['inputs'] == tokenizer.mask_id).any()
  cache_files = os.listdir(tmp_path)
  assert any(tokenizer.fingerprint in name and '-train-' in name for name in cache_files)


# ------------------------------------------------------------------ pipeline


def test_token_cache_is_named_and_reused(data_dir, tmp_path, monkeypatch):
  lm_data = small_data(data_dir, cache_dir=str(tmp_path))
  first = take(lm_data.train_dataset(None, 4, 'causal'), 2)
  (cache_file,) = os.listdir(tmp_path)
  assert cache_file == 'python_stdlib_corpus_small_1.0.0-train-text-byte260.npy'

  def fail(*args):
    raise AssertionError('tokenized again instead of reading the cache')

  monkeypatch.setattr(token_cache, 'tokenize_split', fail)
  again = take(small_data(data_dir, cache_dir=str(tmp_path)).train_dataset(
      None, 4, 'causal'), 2)
  assert_batches_equal(first, again)


def test_same_seed_same_batches_other_seed_other_batches(data_dir):
  first = take(small_data(data_dir, seed=7).train_dataset(None, 8, 'mlm'), 3)
  second = take(small_data(data_dir, seed=7).train_dataset(None, 8, 'mlm'), 3)
  other = take(small_data(data_dir, seed=8).train_dataset(None, 8, 'mlm'), 3)
  assert_batches_equal(first, second)
  assert not np.array_equal(first[0]['targets'], other[0]['targets'])
  assert first[0]['inputs'].dtype == np.int32 and first[0]['weights'].dtype == np.float32


def test_mlm_masking_rates(data_dir):
  lm_data = small_data(data_dir, sequence_length=128)
  batches = take(lm_data.train_dataset(None, 64, 'mlm'), 4)
  inputs, targets, weights = (np.concatenate([b[k] for b in batches])
                              for k in ('inputs', 'targets', 'weights'))
  special = np.isin(targets, lm_data.tokenizer.special_ids)
  selected = weights == 1.0
  assert set(np.unique(weights)) <= {0.0, 1.0}
  assert not (selected & special).any()
  assert abs(selected.sum() / (~special).sum() - 0.15) < 0.01
  np.testing.assert_array_equal(inputs[~selected], targets[~selected])
  masked = selected & (inputs == lm_data.tokenizer.mask_id)
  replaced = selected & (inputs != lm_data.tokenizer.mask_id) & (inputs != targets)
  kept = selected & (inputs == targets)
  assert abs(masked.sum() / selected.sum() - 0.8) < 0.03
  # A random replacement equals the original 1 time in 256: counted as kept.
  assert abs(replaced.sum() / selected.sum() - 0.1) < 0.02
  assert abs(kept.sum() / selected.sum() - 0.1) < 0.02
  assert np.isin(inputs[replaced], lm_data.tokenizer.replacement_ids).all()


def test_masking_streams_are_independent():
  ids = tf.range(64, dtype=tf.int64)
  train = objectives.example_uniforms(0, objectives.TRAIN_STREAM, ids, 128).numpy()
  evaluation = objectives.example_uniforms(0, objectives.EVAL_STREAM, ids, 128).numpy()
  assert 0.0 <= train.min() and train.max() < 1.0
  assert abs(train.mean() - 0.5) < 0.01
  assert abs(np.corrcoef(train.ravel(), evaluation.ravel())[0, 1]) < 0.02
  # Neighbouring examples and positions are decorrelated.
  assert abs(np.corrcoef(train[:-1].ravel(), train[1:].ravel())[0, 1]) < 0.02
  assert abs(np.corrcoef(train[:, :-1].ravel(), train[:, 1:].ravel())[0, 1]) < 0.02


def test_causal_shift_and_windows_come_from_the_token_stream(data_dir, tmp_path):
  lm_data = small_data(data_dir, sequence_length=16, cache_dir=str(tmp_path))
  batches = take(lm_data.train_dataset(None, 8, 'causal'), 3)
  (cache_file,) = os.listdir(tmp_path)
  tokens = np.load(tmp_path / cache_file).astype(np.int32)
  num_windows = (tokens.size - 1) // 16
  assert lm_data.num_examples('train') == num_windows
  all_windows = {tuple(tokens[i * 16:i * 16 + 17]) for i in range(num_windows)}
  for batch in batches:
    np.testing.assert_array_equal(batch['inputs'][:, 1:], batch['targets'][:, :-1])
    assert (batch['weights'] == 1.0).all()
    for inputs, targets in zip(batch['inputs'], batch['targets']):
      assert tuple(np.concatenate([inputs, targets[-1:]])) in all_windows


def test_an_epoch_visits_every_window_once(data_dir):
  lm_data = small_data(data_dir, sequence_length=2048)
  num_windows = lm_data.num_examples('train')
  batches = take(lm_data.train_dataset(None, 16, 'causal'), num_windows // 16 + 1)
  rows = np.concatenate([b['inputs'] for b in batches])
  first_epoch = {row.tobytes() for row in rows[:num_windows]}
  assert len(first_epoch) == num_windows
  # The next epoch is another permutation of the same windows.
  assert rows[num_windows].tobytes() in first_epoch


@pytest.mark.parametrize('objective', ['mlm', 'causal'])
def test_pipelines_reconstruct_the_single_pipeline_global_batches(data_dir, objective):
  lm_data = small_data(data_dir)
  batch_size, steps = 8, 3

  def make(context):
    return lm_data.train_dataset(context, batch_size, objective)

  single = take(make(None), steps)
  for num_replicas, num_pipelines in [(2, 1), (2, 2), (4, 2), (8, 2)]:
    assert_batches_equal(single, global_batches(make, num_replicas, num_pipelines, steps))


def test_resume_continues_the_stream(data_dir):
  lm_data = small_data(data_dir)
  stream = take(lm_data.train_dataset(None, 8, 'mlm'), 5)
  resumed = take(lm_data.train_dataset(None, 8, 'mlm', start_example=3 * 8), 2)
  assert_batches_equal(stream[3:], resumed)
  resumed_on_two_workers = global_batches(
      lambda c: lm_data.train_dataset(c, 8, 'mlm', start_example=3 * 8), 4, 2, 2)
  assert_batches_equal(stream[3:], resumed_on_two_workers)


def test_eval_set_is_fixed_finite_and_in_split_order(data_dir, tmp_path):
  lm_data = small_data(data_dir, sequence_length=16, cache_dir=str(tmp_path))
  first = take(lm_data.eval_dataset(None, 8, 3, 'mlm'), 100)
  assert len(first) == 3
  assert_batches_equal(first, take(lm_data.eval_dataset(None, 8, 3, 'mlm'), 100))
  causal = take(lm_data.eval_dataset(None, 8, 3, 'causal'), 100)
  tokens = np.load(tmp_path / 'python_stdlib_corpus_small_1.0.0-validation-text-byte260.npy')
  rows = np.concatenate([b['inputs'] for b in causal])
  expected = np.stack([tokens[i * 16:i * 16 + 16] for i in range(24)]).astype(np.int32)
  np.testing.assert_array_equal(rows, expected)
  # Distributed, each of 2 pipelines with 2 replicas gets exactly 3 * 2 local batches.
  per_pipeline = lm_data.eval_dataset(input_context(2, 1, 4), 8, 3, 'mlm')
  assert len(take(per_pipeline, 100)) == 6
  assert_batches_equal(first, global_batches(
      lambda c: lm_data.eval_dataset(c, 8, 3, 'mlm'), 4, 2, 3))


def test_streaming_packing_cuts_the_same_windows_as_the_cache(data_dir):
  cached = small_data(data_dir, packing='cached').eval_dataset(None, 8, 4, 'mlm')
  streamed = small_data(data_dir, packing='streaming').eval_dataset(None, 8, 4, 'mlm')
  assert_batches_equal(take(cached, 10), take(streamed, 10))


def test_mock_c4_streams_batches(tmp_path):
  with tfds.testing.mock_data(num_examples=40):
    lm_data = data.LanguageModelingData(
        'c4/en:3.1.0', data_dir=str(tmp_path), sequence_length=16, shuffle_buffer_size=8)
    assert not lm_data.uses_token_cache('train')  # split sizes unknown: stream
    batches = take(lm_data.train_dataset(None, 8, 'mlm'), 4)
    for batch in batches:
      assert batch['inputs'].shape == batch['targets'].shape == (8, 16)
      assert batch['inputs'].dtype == np.int32
      assert batch['weights'].shape == (8, 16)
    assert_batches_equal(batches, take(lm_data.train_dataset(None, 8, 'mlm'), 4))
    # Resume by skipping, and the sharding contract, hold when streaming too.
    assert_batches_equal(batches[2:], take(
        lm_data.train_dataset(None, 8, 'mlm', start_example=16), 2))
    assert_batches_equal(batches, global_batches(
        lambda c: lm_data.train_dataset(c, 8, 'mlm'), 4, 2, 4))
    evaluation = take(lm_data.eval_dataset(None, 8, 2, 'causal'), 10)
    assert len(evaluation) == 2
    np.testing.assert_array_equal(
        evaluation[0]['inputs'][:, 1:], evaluation[0]['targets'][:, :-1])


# ------------------------------------------------------------------ errors


def test_clear_errors(data_dir, tmp_path):
  with pytest.raises(ValueError, match="unknown tfds dataset 'no_such_corpus'"):
    data.LanguageModelingData('no_such_corpus')
  with pytest.raises(ValueError, match='unknown tfds dataset'):
    data.load_or_prepare('python_stdlib_corpus/no_such_config', str(tmp_path))
  with pytest.raises(ValueError, match='SentencePiece model file not found'):
    data.make_tokenizer('sentencepiece', str(tmp_path / 'missing.model'))
  with pytest.raises(ValueError, match="unknown tokenizer kind 'words'"):
    data.make_tokenizer('words')
  with pytest.raises(ValueError, match="unknown packing 'zip'"):
    small_data(data_dir, packing='zip')
  lm_data = small_data(data_dir)
  with pytest.raises(ValueError, match="unknown objective 'mlmm'"):
    lm_data.train_dataset(None, 8, 'mlmm')
  with pytest.raises(ValueError, match='global_batch_size 5 is not divisible by the 2'):
    lm_data.train_dataset(input_context(1, 0, 2), 5, 'mlm')
  with pytest.raises(ValueError, match='start_example 4 is not a non-negative multiple'):
    lm_data.train_dataset(None, 8, 'mlm', start_example=4)
  with pytest.raises(ValueError, match="text_key 'body' is not a feature"):
    small_data(data_dir, text_key='body').train_dataset(None, 8, 'mlm')
  with pytest.raises(ValueError, match="cannot read split 'tests'"):
    small_data(data_dir, eval_split='tests', packing='streaming').eval_dataset(
        None, 8, 1, 'mlm')
  with pytest.raises(ValueError, match='is not prepared in data_dir'):
    data.LanguageModelingData('c4/en:3.1.0', data_dir=str(tmp_path)).train_dataset(
        None, 8, 'mlm')


# ------------------------------------------------------------------ gin


@pytest.mark.parametrize('gin_file', sorted(p.name for p in GIN_DATA_DIR.glob('*.gin')))
def test_every_shipped_gin_file_parses_and_builds(gin_file, tmp_path):
  text = (GIN_DATA_DIR / gin_file).read_text()
  assert text.startswith('#')
  gin.parse_config_file(str(GIN_DATA_DIR / gin_file))
  if 'DATA_DIR = %gin.REQUIRED' in text:
    assert 'Required: DATA_DIR' in text
    # gin 0.5.0 passes the REQUIRED sentinel through a macro silently; finalize() is
    # what reports the missing binding, and the constructor double-checks.
    with pytest.raises(ValueError, match='data_dir is gin.REQUIRED'):
      data.LanguageModelingData()
    with pytest.raises(ValueError, match='DATA_DIR.*gin.REQUIRED. but not subsequently'):
      gin.finalize()
    gin.clear_config()
    gin.parse_config_file(str(GIN_DATA_DIR / gin_file))
    gin.parse_config(f"DATA_DIR = '{tmp_path}'")
  gin.finalize()
  lm_data = data.LanguageModelingData()
  assert lm_data.dataset_name.split('/')[0].split(':')[0] in (
      'python_stdlib_corpus', 'c4', 'wikipedia')
  assert lm_data.vocab_size == 260


def test_gin_selects_the_sentencepiece_tokenizer(spm_model_path, data_dir):
  gin.parse_config(f"""
      make_tokenizer.kind = 'sentencepiece'
      make_tokenizer.spm_model_path = '{spm_model_path}'
      LanguageModelingData.dataset_name = '{SMALL_CORPUS}'
      LanguageModelingData.data_dir = '{data_dir}'
  """)
  assert data.LanguageModelingData().vocab_size == 101
