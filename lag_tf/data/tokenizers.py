"""Tokenizers: byte-level (default, no files needed) and SentencePiece (option).

Both share one interface:
  vocab_size, pad_id, bos_id, eos_id, mask_id   ints; every id is < vocab_size
  special_ids          ids that are never masked nor drawn as MLM random replacements
  replacement_ids      np.int32 array of the ids MLM may substitute (all non-special ids)
  fingerprint          stable string naming the tokenizer and its vocabulary; token
                       cache file names contain it, so a changed model is re-tokenized
  encode(str) -> np.ndarray int32, decode(ids) -> str      outside tf.data
  tf_encode(texts: tf.string [n]) -> tf.RaggedTensor int32 [n, None]   inside tf.data
"""

from __future__ import annotations

import abc
import hashlib

import numpy as np
import tensorflow as tf

from lag_tf import gin_registry


class Tokenizer(abc.ABC):
  """Common interface of the tokenizers (see the module docstring)."""

  vocab_size: int
  pad_id: int
  bos_id: int
  eos_id: int
  mask_id: int
  fingerprint: str

  @property
  @abc.abstractmethod
  def special_ids(self) -> tuple[int, ...]:
    """Ids with a role (padding, separators, mask, unknown...), sorted."""

  @property
  def replacement_ids(self) -> np.ndarray:
    """Ids an MLM random replacement may take: every id that is not special."""
    is_special = np.zeros(self.vocab_size, bool)
    is_special[list(self.special_ids)] = True
    return np.flatnonzero(~is_special).astype(np.int32)

  @abc.abstractmethod
  def encode(self, text: str) -> np.ndarray:
    """Token ids of `text`, int32, without bos/eos."""

  @abc.abstractmethod
  def decode(self, ids) -> str:
    """Text of `ids`; special ids are dropped."""

  @abc.abstractmethod
  def tf_encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
    """Token ids of a vector of strings, as a [n, None] int32 RaggedTensor."""


class ByteTokenizer(Tokenizer):
  """UTF-8 bytes as tokens: 0=pad, 1=bos/cls, 2=eos/sep, 3=mask, byte b -> b + 4.

  Lossless for any text, needs no model file, and its vocabulary (260) is tiny, which
  suits the small models this framework grows.
  """

  NUM_SPECIAL_IDS = 4

  def __init__(self):
    self.pad_id, self.bos_id, self.eos_id, self.mask_id = 0, 1, 2, 3
    self.vocab_size = 256 + self.NUM_SPECIAL_IDS
    self.fingerprint = f'byte{self.vocab_size}'

  @property
  def special_ids(self) -> tuple[int, ...]:
    return tuple(range(self.NUM_SPECIAL_IDS))

  def encode(self, text: str) -> np.ndarray:
    return np.frombuffer(text.encode('utf-8'), np.uint8).astype(np.int32) + (
        self.NUM_SPECIAL_IDS)

  def decode(self, ids) -> str:
    ids = np.asarray(ids, np.int64).reshape(-1)
    byte_values = ids[(ids >= self.NUM_SPECIAL_IDS) & (ids < self.vocab_size)]
    return (byte_values - self.NUM_SPECIAL_IDS).astype(np.uint8).tobytes().decode(
        'utf-8', errors='replace')

  def tf_encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
    # ISO-8859-1 maps every byte to the code point of the same value, so this is a
    # vectorized "bytes of each string" (tf.io.decode_raw needs equal lengths).
    byte_values = tf.strings.unicode_decode(texts, 'ISO-8859-1')
    return byte_values + self.NUM_SPECIAL_IDS


class SentencePieceTokenizer(Tokenizer):
  """A SentencePiece model's pieces, plus reserved ids for roles the model lacks.

  pad/bos/eos come from the model (its pad_id/bos_id/eos_id). The mask id is the piece
  '[MASK]' (or '<mask>') if the model has it -- train with
  user_defined_symbols=['[MASK]'] -- else it is reserved. Reserved ids follow the
  model's pieces in the order pad, bos, eos, mask (only those the model lacks), so
  vocab_size = pieces + reserved. Decoding drops reserved ids.
  """

  _MASK_PIECES = ('[MASK]', '<mask>')

  def __init__(self, model_path: str):
    import sentencepiece  # pylint: disable=g-import-not-at-top  (optional dependency)
    if not model_path or not tf.io.gfile.exists(model_path):
      raise ValueError(f'SentencePiece model file not found: {model_path!r}')
    with tf.io.gfile.GFile(model_path, 'rb') as f:
      model_proto = f.read()
    self._processor = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
    self.num_pieces = self._processor.get_piece_size()
    next_reserved_id = self.num_pieces

    def model_id_or_reserved(model_id: int) -> int:
      nonlocal next_reserved_id
      if model_id >= 0:
        return model_id
      next_reserved_id += 1
      return next_reserved_id - 1

    self.pad_id = model_id_or_reserved(self._processor.pad_id())
    self.bos_id = model_id_or_reserved(self._processor.bos_id())
    self.eos_id = model_id_or_reserved(self._processor.eos_id())
    self.mask_id = model_id_or_reserved(self._mask_piece_id())
    self.vocab_size = next_reserved_id
    digest = hashlib.sha256(model_proto).hexdigest()[:16]
    self.fingerprint = f'spm{self.vocab_size}-{digest}'
    self._special_ids = tuple(sorted(
        {self.pad_id, self.bos_id, self.eos_id, self.mask_id}
        | set(range(self.num_pieces, self.vocab_size))
        | {i for i in range(self.num_pieces)
           if self._processor.is_control(i) or self._processor.is_unknown(i)}))

  def _mask_piece_id(self) -> int:
    for piece in self._MASK_PIECES:
      piece_id = self._processor.piece_to_id(piece)
      if self._processor.id_to_piece(piece_id) == piece:  # unknown pieces map to unk
        return piece_id
    return -1

  @property
  def special_ids(self) -> tuple[int, ...]:
    return self._special_ids

  def encode(self, text: str) -> np.ndarray:
    return np.asarray(self._processor.encode(text), np.int32)

  def decode(self, ids) -> str:
    special = set(self._special_ids)
    return self._processor.decode(
        [int(i) for i in np.asarray(ids).reshape(-1) if int(i) not in special])

  def _encode_flat(self, texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pieces = self._processor.encode(
        [t.decode('utf-8', errors='replace') for t in texts.reshape(-1)])
    lengths = np.array([len(p) for p in pieces], np.int64)
    flat = np.fromiter((i for p in pieces for i in p), np.int32, int(lengths.sum()))
    return flat, lengths

  def tf_encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
    # No TF op runs SentencePiece (tensorflow_text is not a dependency): one Python
    # call per vector of texts keeps the GIL cost per batch, not per document.
    flat, lengths = tf.numpy_function(
        self._encode_flat, [texts], [tf.int32, tf.int64], stateful=False)
    flat.set_shape([None])
    lengths.set_shape([None])
    return tf.RaggedTensor.from_row_lengths(flat, lengths, validate=False)


@gin_registry.configurable
def make_tokenizer(kind: str = 'byte', spm_model_path: str | None = None) -> Tokenizer:
  """The tokenizer named by `kind`: 'byte' or 'sentencepiece' (needs spm_model_path)."""
  if kind == 'byte':
    if spm_model_path is not None:
      raise ValueError(
          f"spm_model_path={spm_model_path!r} is only used with kind='sentencepiece'")
    return ByteTokenizer()
  if kind == 'sentencepiece':
    if spm_model_path is None:
      raise ValueError("kind='sentencepiece' needs spm_model_path")
    return SentencePieceTokenizer(spm_model_path)
  raise ValueError(f"unknown tokenizer kind {kind!r}; expected 'byte' or 'sentencepiece'")
