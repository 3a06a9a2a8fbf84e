"""Training FLOPs per token, counted the usual way (PaLM, appendix B).

6 x (parameters used in matmuls: embedding lookups excluded, the output projection included)
per token, plus 12 x layers x sequence length x attention width for attention's score and
value matmuls (forward + backward). Biases, norms and softmax are ignored, as is customary.

`predicted_fraction` < 1 counts the LM head (the encoder's transform and the vocabulary
projection) only for that share of tokens: lag_tf's masked-LM loss runs the head at the
predicted positions only (lag_tf.training.losses), so those are the FLOPs the model needs.
The LAG and gradual experiments keep the convention (every token, fraction 1).

An evaluation runs the forward pass only: a third of the training count (the backward pass is
counted as twice the forward, for the matmuls and for attention alike).
"""

from __future__ import annotations

from lag_tf.models.config import TransformerConfig


def _block_and_head_parameters(config: TransformerConfig) -> tuple[int, int]:
  d, a, f, v = config.d_model, config.attention_width, config.d_ff, config.vocab_size
  per_block = 3 * d * a + a * d + 2 * d * f
  head = d * v + (d * d if config.kind == "encoder" else 0)
  return config.num_layers * per_block, head


def matmul_parameters(config: TransformerConfig) -> int:
  """Weights that take part in a matmul per token (the tied embedding counts once, as the
  output projection; position embeddings are lookups)."""
  blocks, head = _block_and_head_parameters(config)
  return blocks + head


def training_flops_per_token(config: TransformerConfig, sequence_length: int = None,
                             predicted_fraction: float = 1.0) -> float:
  if not 0.0 <= predicted_fraction <= 1.0:
    raise ValueError(f"predicted_fraction={predicted_fraction!r}: expected a share in [0, 1]")
  length = config.max_len if sequence_length is None else sequence_length
  attention = 12 * config.num_layers * length * config.attention_width
  blocks, head = _block_and_head_parameters(config)
  return float(6 * blocks + 6 * head * predicted_fraction + attention)


def forward_flops_per_token(config: TransformerConfig, sequence_length: int = None,
                            predicted_fraction: float = 1.0) -> float:
  """FLOPs of one forward pass per token (an evaluation): a third of the training count."""
  return training_flops_per_token(config, sequence_length, predicted_fraction) / 3.0
