"""The Transformer's shape and options: one frozen dataclass, validated, gin-bindable.

Growth operators map one `TransformerConfig` to another, so it is a plain value type
(hashable, comparable, round-trips through `to_dict` / `from_dict`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional

from lag_tf import gin_registry

MODEL_KINDS = ("encoder", "decoder")
# "gelu" is the exact (erf) GELU; "gelu_tanh" its tanh approximation (GPT-2's).
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu")
DTYPE_POLICIES = ("float32", "mixed_bfloat16")


@gin_registry.configurable
@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  """Shape and options of a pre-LayerNorm Transformer.

  kind: 'encoder' (bidirectional, BERT-style masked-LM head) or 'decoder' (causal LM).
  head_dim: per-head width; None means d_model // num_heads. Kept separate from d_model so
    width growth can add heads without changing d_model.
  tie_embeddings: the output projection reuses the token embedding (transposed).
  dtype_policy: 'float32' or 'mixed_bfloat16' (bf16 compute, f32 variables and logits).
  fused_kernels: run the blocks' LayerNorm, bias + GELU and attention as lag_tf.models.kernels'
    fused TensorFlow ops (same function and variables; faster, see docs/design.md "Performance").
  """

  kind: str = "encoder"
  num_layers: int = 2
  d_model: int = 128
  num_heads: int = 2
  d_ff: int = 512
  vocab_size: int = 260
  max_len: int = 128
  head_dim: Optional[int] = None
  dropout: float = 0.0
  activation: str = "gelu"
  tie_embeddings: bool = True
  layer_norm_epsilon: float = 1e-6
  dtype_policy: str = "float32"
  fused_kernels: bool = True

  def __post_init__(self):
    if self.kind not in MODEL_KINDS:
      raise ValueError(f"TransformerConfig.kind={self.kind!r}: expected one of {MODEL_KINDS}")
    if self.activation not in ACTIVATIONS:
      raise ValueError(
          f"TransformerConfig.activation={self.activation!r}: expected one of {ACTIVATIONS}")
    if self.dtype_policy not in DTYPE_POLICIES:
      raise ValueError(
          f"TransformerConfig.dtype_policy={self.dtype_policy!r}: expected one of {DTYPE_POLICIES}")
    for name in ("num_layers", "d_model", "num_heads", "d_ff", "vocab_size", "max_len"):
      value = getattr(self, name)
      if not isinstance(value, int) or value < 1:
        raise ValueError(f"TransformerConfig.{name}={value!r}: expected a positive integer")
    if self.head_dim is None and self.d_model % self.num_heads:
      raise ValueError(f"TransformerConfig: d_model={self.d_model} is not divisible by "
                       f"num_heads={self.num_heads}; set head_dim explicitly")
    if not 0.0 <= self.dropout < 1.0:
      raise ValueError(f"TransformerConfig.dropout={self.dropout!r}: expected 0 <= dropout < 1")

  @property
  def key_dim(self) -> int:
    """Per-head width actually used."""
    return self.head_dim if self.head_dim is not None else self.d_model // self.num_heads

  @property
  def attention_width(self) -> int:
    """num_heads * key_dim: the width of the query/key/value projections."""
    return self.num_heads * self.key_dim

  @property
  def objective(self) -> str:
    return "mlm" if self.kind == "encoder" else "causal"

  def replace(self, **changes: Any) -> "TransformerConfig":
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, values: Mapping[str, Any]) -> "TransformerConfig":
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
      raise ValueError(f"TransformerConfig: unknown fields {unknown}")
    return cls(**values)
