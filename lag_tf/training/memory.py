"""Will a training step fit? A pure estimate of a step's peak memory per replica, the memory a
replica has, and the check the Trainer runs before it builds anything.

The estimate counts what dominates a Transformer step (bytes per replica):

  parameters        4 x P (float32 variables, also under mixed_bfloat16)
  optimizer slots   3 x 4 x P: AdamW's two moments and the per-parameter "moment birth step"
  gradients         2 x 4 x P: the replica's gradients and their all-reduced, clipped copy
  activations       kept for the backward pass, per layer and token: the block's inputs, norms,
                    q/k/v, attention output, FFN pre- and post-activation
  attention scores  batch x heads x length^2 per layer, scores and softmax (float32) kept for
                    the backward pass, plus one layer's gradients of them
  vocabulary head   logits, softmax and their gradient at the predicted rows: every position of
                    a causal LM, `losses.prediction_capacity` rows of a masked LM

An evaluation step holds the variables and optimizer slots, one layer's activations and scores,
and the head's logits. The estimate ignores the TF runtime (~0.5 GB of host RAM) and input
buffers. Measured against the peak RSS of training by benchmarks/memory_estimate.py (CHANGELOG.md).

`estimate_step_memory` and `describe` are for plans (e.g. `--dry_run`): pure, no TF needed.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Tuple

from lag_tf import gin_registry
from lag_tf.models.config import TransformerConfig
from lag_tf.models.transformer import count_parameters
from lag_tf.training.losses import prediction_capacity

OPTIMIZER_SLOTS = 3  # AdamW m and v, and the float32 moment birth step per parameter.
GRADIENT_COPIES = 2

ADVICE = {
    "attention scores": "lower TransformerConfig.max_len (SEQUENCE_LENGTH) or "
                        "Trainer.global_batch_size, or use more replicas",
    "activations": "lower Trainer.global_batch_size or TransformerConfig.max_len "
                   "(SEQUENCE_LENGTH), or use more replicas",
    "vocabulary head": "lower Trainer.global_batch_size or TransformerConfig.vocab_size",
}
_MODEL_SIZE_ADVICE = "lower the model size (TransformerConfig num_layers, d_model, d_ff, vocab_size)"


class StepMemoryError(ValueError):
  """A step cannot fit in a replica's memory; the message is one line."""


@dataclasses.dataclass(frozen=True)
class MemoryEstimate:
  """Bytes per replica: the training step's terms, and the peaks of both steps."""
  terms: Dict[str, int]
  train_peak: int
  eval_peak: int
  per_replica_batch: int

  @property
  def largest_term(self) -> str:
    return max(self.terms, key=self.terms.get)


def head_rows(config: TransformerConfig, tokens: int,
              mask_probability: Optional[float]) -> int:
  """Rows the vocabulary head runs on for `tokens` tokens (losses.token_loss_sums)."""
  if config.objective == "mlm" and mask_probability:
    return prediction_capacity(tokens, mask_probability)
  return tokens


def estimate_step_memory(config: TransformerConfig, per_replica_batch: int,
                         mask_probability: Optional[float] = 0.15) -> MemoryEstimate:
  """The peak memory of a training and an evaluation step on one replica (pure).

  mask_probability: the masked LM's share of predicted positions (its head runs there only);
    ignored for a decoder.
  """
  if per_replica_batch < 1:
    raise ValueError(f"per_replica_batch={per_replica_batch}: expected a positive integer")
  act = 2 if config.dtype_policy == "mixed_bfloat16" else 4
  length, layers = config.max_len, config.num_layers
  d, width, ffn = config.d_model, config.attention_width, config.d_ff
  tokens = per_replica_batch * length
  parameters = 4 * count_parameters(config)
  per_layer_activations = tokens * (7 * d + 4 * width + 2 * ffn) * act
  scores = per_replica_batch * config.num_heads * length * length
  rows = head_rows(config, tokens, mask_probability)
  head_hidden = rows * d * act * (3 if config.objective == "mlm" else 1)
  head = 3 * rows * config.vocab_size * 4 + head_hidden
  terms = {
      "parameters": parameters,
      "optimizer slots": OPTIMIZER_SLOTS * parameters,
      "gradients": GRADIENT_COPIES * parameters,
      "activations": layers * per_layer_activations + 2 * tokens * d * 4,
      "attention scores": (layers + 1) * 2 * scores * 4,
      "vocabulary head": head,
  }
  eval_peak = ((1 + OPTIMIZER_SLOTS) * parameters + per_layer_activations + 2 * scores * 4 +
               2 * rows * config.vocab_size * 4 + head_hidden)
  return MemoryEstimate(terms=terms, train_peak=sum(terms.values()), eval_peak=eval_peak,
                        per_replica_batch=per_replica_batch)


def format_bytes(count: float) -> str:
  for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
    if abs(count) < 1024 or unit == "TiB":
      return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
    count /= 1024.0


def describe(estimate: MemoryEstimate, budget: Optional[int] = None,
             budget_source: str = "") -> str:
  """One line for a plan: both peaks, the largest term, and the budget if known."""
  largest = estimate.largest_term
  line = (f"memory per replica (batch {estimate.per_replica_batch}): training step "
          f"~{format_bytes(estimate.train_peak)}, eval step ~{format_bytes(estimate.eval_peak)}; "
          f"largest term {largest} {format_bytes(estimate.terms[largest])}")
  if budget:
    line += f"; a replica has {format_bytes(budget)} ({budget_source})"
  return line


# ---- what a replica has -------------------------------------------------------------------


def host_memory_bytes() -> Optional[int]:
  """Physical RAM of this host, lowered to the cgroup's memory limit if one is set."""
  try:
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
  except (ValueError, OSError, AttributeError):
    total = None
  for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
    try:
      with open(limit_file) as f:
        text = f.read().strip()
    except OSError:
      continue
    if text.isdigit() and (total is None or int(text) < total):
      total = int(text)
  return total


def _replica_devices(strategy) -> list:
  try:
    return list(strategy.extended.worker_devices)
  except (RuntimeError, AttributeError, NotImplementedError):  # The default strategy.
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    for kind in ("TPU", "GPU"):
      if tf.config.list_logical_devices(kind):
        return [f"{kind}:0"]
    return ["CPU:0"]


def replica_memory(strategy) -> Tuple[Optional[int], str]:
  """(bytes one replica of `strategy` can use, where the figure comes from); (None, reason)
  where TF does not report it (TPU)."""
  devices = _replica_devices(strategy)
  kind = "TPU" if "TPU" in devices[0].upper() else "GPU" if "GPU" in devices[0].upper() else "CPU"
  if kind == "CPU":
    host = host_memory_bytes()
    if host is None:
      return None, "host RAM unknown"
    if len(devices) > 1:
      return host // len(devices), f"host RAM {format_bytes(host)} shared by {len(devices)} replicas"
    return host, "host RAM"
  if kind == "GPU":
    from tensorflow.python.client import device_lib  # pylint: disable=g-import-not-at-top
    limits = [d.memory_limit for d in device_lib.list_local_devices()
              if d.device_type == "GPU" and d.memory_limit]
    if limits:
      return min(limits), "GPU memory"
  return None, f"{kind} memory not reported by TensorFlow"


@gin_registry.configurable(allowlist=["enabled"])
def check_step_memory(config: TransformerConfig, global_batch_size: int, strategy,
                      mask_probability: Optional[float], enabled: bool = True) -> MemoryEstimate:
  """Raises StepMemoryError if a training step cannot fit in one replica's memory.

  enabled: False skips the check (e.g. for a device whose memory TF misreports).
  """
  replicas = strategy.num_replicas_in_sync
  estimate = estimate_step_memory(config, max(1, global_batch_size // replicas),
                                  mask_probability)
  if not enabled:
    return estimate
  budget, source = replica_memory(strategy)
  check_estimate(estimate, budget, source)
  return estimate


def check_estimate(estimate: MemoryEstimate, budget: Optional[int], source: str) -> None:
  """Raises StepMemoryError (one line: the largest term and what to lower) if the training
  step's peak exceeds `budget` bytes; an unknown budget (None) passes."""
  if budget is not None and estimate.train_peak > budget:
    largest = estimate.largest_term
    raise StepMemoryError(
        f"a training step needs about {format_bytes(estimate.train_peak)} per replica but a "
        f"replica has {format_bytes(budget)} ({source}); the largest term is {largest} "
        f"({format_bytes(estimate.terms[largest])}): "
        f"{ADVICE.get(largest, _MODEL_SIZE_ADVICE)} (check_step_memory.enabled = False skips "
        "this check)")
