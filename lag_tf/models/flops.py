"""Training FLOPs per token, counted the usual way (PaLM, appendix B).

6 x (parameters used in matmuls: embedding lookups excluded, the output projection included)
per token, plus 12 x layers x sequence length x attention width for attention's score and
value matmuls (forward + backward). Biases, norms and softmax are ignored, as is customary.
"""

from __future__ import annotations

from lag_tf.models.config import TransformerConfig


def matmul_parameters(config: TransformerConfig) -> int:
  """Weights that take part in a matmul per token (the tied embedding counts once, as the
  output projection; position embeddings are lookups)."""
  d, a, f, v = config.d_model, config.attention_width, config.d_ff, config.vocab_size
  per_block = 3 * d * a + a * d + 2 * d * f
  head = d * v + (d * d if config.kind == "encoder" else 0)
  return config.num_layers * per_block + head


def training_flops_per_token(config: TransformerConfig, sequence_length: int = None) -> float:
  length = config.max_len if sequence_length is None else sequence_length
  attention = 12 * config.num_layers * length * config.attention_width
  return float(6 * matmul_parameters(config) + attention)
