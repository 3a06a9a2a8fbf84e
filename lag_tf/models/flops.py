"""Training FLOPs per token, counted the usual way (PaLM, appendix B), and lag_tf's one
convention for what a run is charged.

6 x (parameters used in matmuls: embedding lookups excluded, the output projection included)
per token, plus 12 x layers x sequence length x attention width for attention's score and
value matmuls (forward + backward). Biases, norms and softmax are ignored, as is customary.

The convention (`flops_per_token`; every counter uses it: docs/design.md, "One FLOP convention"):
the LM head (an encoder's transform and the vocabulary projection) is charged at the positions the
loss predicts. A causal LM predicts every position. A masked LM's loss runs its head on the
predicted positions only (lag_tf.training.losses), so its head is charged at the data's mask
probability (`LanguageModelingData.mlm_probability`, `trainer.mask_probability_of`), the share of
positions the objective predicts. Not at the rows the gather actually runs
(`losses.prediction_capacity`: the expected count plus 6 standard deviations, rounded up to 16
rows), because that margin (a) is sized per replica batch, so it would make a run's FLOPs, and
every FLOP-matched step count, depend on the number of devices, which a plan for an accelerator
does not know and the comparison budget never sees; and (b) is padding that keeps XLA's shapes
static, like padded matmul tiles, which the PaLM count ignores too. What that leaves out: at 0.15
the gather runs 416 rows of a 2,048-token batch (20.3%; the small suite's encoder on one device,
where those rows would add 0.3% to a step's count) and 752 of 4,096 (18.4%).
(benchmarks/throughput.py times the matmuls a step really runs, so its MFU counts the measured
share with `training_flops_per_token`.)

An evaluation runs the forward pass only (the same gathered head): a third of the training
count (the backward pass is counted as twice the forward, for the matmuls and for attention
alike).
"""

from __future__ import annotations

from typing import Optional

from lag_tf.models.config import TransformerConfig

# The convention in a sentence, for the texts that state it (the dry run's plan, the suite
# report).
CONVENTION = ("6 x matmul parameters + attention per token, the LM head only at the positions "
              "the loss predicts: every one for a causal LM, the mask probability's share for a "
              "masked LM")


def _block_and_head_parameters(config: TransformerConfig) -> tuple[int, int]:
  d, a, f, v = config.d_model, config.attention_width, config.d_ff, config.vocab_size
  per_block = 3 * d * a + a * d + 2 * d * f
  head = d * v + (d * d if config.kind == "encoder" else 0)
  return config.num_layers * per_block, head


def training_flops_per_token(config: TransformerConfig, sequence_length: int = None, *,
                             predicted_fraction: float) -> float:
  """The count with the LM head at `predicted_fraction` of the tokens. Counters charge a run
  with `flops_per_token` (the convention); this is the formula under it, for a measured share."""
  if not 0.0 <= predicted_fraction <= 1.0:
    raise ValueError(f"predicted_fraction={predicted_fraction!r}: expected a share in [0, 1]")
  length = config.max_len if sequence_length is None else sequence_length
  attention = 12 * config.num_layers * length * config.attention_width
  blocks, head = _block_and_head_parameters(config)
  return float(6 * blocks + 6 * head * predicted_fraction + attention)


def predicted_share(config: TransformerConfig, mask_probability: Optional[float]) -> float:
  """The share of positions the head is charged at: `mask_probability` for a masked LM, every
  position for a causal LM (and for a masked LM without one: the loss then runs the head at
  every position, as `losses.token_loss_sums` does)."""
  return mask_probability if config.objective == "mlm" and mask_probability else 1.0


def flops_per_token(config: TransformerConfig, mask_probability: Optional[float]) -> float:
  """Training FLOPs per token of `config` in lag_tf's convention (the module doc).

  mask_probability: the data's masking probability (`trainer.mask_probability_of`; ignored for
    a causal LM).
  """
  return training_flops_per_token(
      config, predicted_fraction=predicted_share(config, mask_probability))


def forward_share(training_flops: float) -> float:
  """What a forward pass alone (an evaluation) costs, given what a training step on the same
  tokens costs: a third (forward + backward = 3 forward passes). Also used on step counts: 2
  evaluations of b batches cost forward_share(2 * b) training steps. The one place this rule is
  written; every counter (plans, probes, decision records, the suite's charge) goes through it."""
  return training_flops / 3.0


def forward_flops_per_token(config: TransformerConfig,
                            mask_probability: Optional[float]) -> float:
  """FLOPs of one forward pass per token (an evaluation)."""
  return forward_share(flops_per_token(config, mask_probability))
