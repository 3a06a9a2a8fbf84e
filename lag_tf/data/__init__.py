"""Data: tfds corpora -> tokens -> packed, masked, distributed batches.

Importing this package registers the embedded `python_stdlib_corpus` tfds builder and
the gin configurables `LanguageModelingData` and `make_tokenizer`.
"""

from lag_tf.data.pipeline import LanguageModelingData
from lag_tf.data.sharding import ShardLayout
from lag_tf.data.stdlib_corpus import PythonStdlibCorpus
from lag_tf.data.tfds_loading import load_or_prepare
from lag_tf.data.tokenizers import ByteTokenizer
from lag_tf.data.tokenizers import SentencePieceTokenizer
from lag_tf.data.tokenizers import Tokenizer
from lag_tf.data.tokenizers import make_tokenizer

__all__ = [
    'ByteTokenizer',
    'LanguageModelingData',
    'PythonStdlibCorpus',
    'SentencePieceTokenizer',
    'ShardLayout',
    'Tokenizer',
    'load_or_prepare',
    'make_tokenizer',
]
