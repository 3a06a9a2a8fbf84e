"""Training throughput of lag_tf against keras-hub's BERT, and lag_tf's MFU on this machine.

Both contenders are a BERT-mini-sized masked-LM encoder (4 layers, d_model 256, 4 heads,
FFN 1024, sequence 128, vocabulary 8192, tied output embedding, no dropout), trained by the
*same* `lag_tf.training.Trainer` loop (Orbit pattern: one `tf.function` runs --steps steps
through `strategy.run`; AdamW, loss normalized by the all-reduced weight sum, global-norm
clipping) on the *same* fixed in-memory MLM batches (BERT masking, 15%), fed through
`strategy.distribute_datasets_from_function`:

  lag_tf     `lag_tf.models.build_transformer` (pre-LN) with lag_tf's masked-LM loss: the
             vocabulary head runs only on the predicted positions, gathered into one flat set
             of rows per replica batch (lag_tf.training.losses).
  keras_hub  `keras_hub.models.BertBackbone` + `keras_hub.layers.MaskedLMHead` tied to the
             backbone's token embedding (what `BertMaskedLM` builds), with keras-hub's own
             interface: `mask_positions` [batch, P] per sequence, P = the largest count of
             predicted positions in one sequence of the data (the smallest P that drops no
             target, so both contenders minimize the same loss).

Each runs with and without XLA (`jit_compile` on the per-replica step). Reference rows, never
in the ratio: keras-hub with lag_tf's flat gather (same head work as lag_tf: the difference
left is the encoder), and lag_tf with the head at every position (before the gathered head).
The contenders are alternated within one process (A B C D, then D C B A, ...), so a machine
shared with other jobs slows every contender alike; tokens/s are medians over the repeats.

MFU = lag_tf's counted training FLOP/s / the FLOP/s of a large float32 `tf.linalg.matmul`
(2 n^3 per call, plain tf.function: oneDNN, which on this CPU is faster than XLA's dot; the
XLA matmul is timed too and reported). FLOPs are counted the PaLM way (appendix B: 6 x matmul
parameters + 12 x layers x sequence x width per token, `training_flops_per_token`), with the
head (transform + vocabulary projection) counted only for the predicted share of tokens: the
model never computes the rest, so counting it would inflate MFU. The matmul is timed right
after every training measurement and MFU is the median of those paired ratios, so a burst of
load from other jobs cancels out; the throughput ratio is likewise the median of the
per-repeat ratios of the best settings (best = highest median tokens/s).

A last lag_tf row runs its blocks on Keras' own layers (`fused_kernels=False`) instead of
lag_tf.models.kernels' fused LayerNorm, bias + GELU and attention: the kernels' gain.

"step's matmuls only" rows time every matmul of one training step (forward and both
backward products of each dense layer, attention's batched products, the gathered head) and
nothing else: counted FLOPs over that time is the MFU no implementation of this step with
these kernels can exceed. "optimizer update only" times the Trainer's clipping + AdamW on
lag_tf's variables; the ratio bound is keras-hub's best step time over (matmuls only +
update only): the throughput ratio no lag_tf model implementation in this loop can exceed.

  python benchmarks/throughput.py [--steps 10] [--warmup_steps 2] [--repeats 5] [--seed 0]
                                  [--bf16]

--bf16 adds lag_tf rows under `mixed_bfloat16` (oneDNN uses AMX/AVX512-BF16 where present):
reported only, never in the ratio or MFU (an f32 matmul is not its peak).

The last line is `throughput_ratio=<lag_tf best / keras_hub best> mfu=<fraction>`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

# `python benchmarks/throughput.py` from a checkout: make the repository importable.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # pylint: disable=wrong-import-position
import tensorflow as tf
import keras

from lag_tf.data import objectives
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import training_flops_per_token
from lag_tf.training import losses
from lag_tf.training import trainer as trainer_lib
from lag_tf.training.engine import StepEngine

CONFIG = TransformerConfig(kind="encoder", num_layers=4, d_model=256, num_heads=4, d_ff=1024,
                           vocab_size=8192, max_len=128, dropout=0.0, tie_embeddings=True)
GLOBAL_BATCH_SIZE = 32
NUM_SPECIAL_IDS = 5  # ids 0..4 play pad/cls/sep/unk/mask; never masked or sampled
MASK_ID = 4


# ---- data ----------------------------------------------------------------------------------

class FixedBatches:
  """A stand-in for `LanguageModelingData`: `num_batches` fixed MLM batches, repeated.

  Batches are masked by lag_tf's own BERT masking (lag_tf.data.objectives) on random token
  windows, and built once, so both contenders see exactly the same tensors.
  """

  def __init__(self, config: TransformerConfig, global_batch_size: int, num_batches: int,
               seed: int):
    self.vocab_size = config.vocab_size
    rng = np.random.default_rng(seed)
    windows = rng.integers(NUM_SPECIAL_IDS, config.vocab_size,
                           size=(num_batches * global_batch_size, config.max_len + 1),
                           dtype=np.int32)
    spec = objectives.MaskingSpec(
        mask_id=MASK_ID, special_ids=tuple(range(NUM_SPECIAL_IDS)),
        replacement_ids=np.arange(NUM_SPECIAL_IDS, config.vocab_size, dtype=np.int32))
    self.masking = spec  # The Trainer sizes its gathered masked-LM head from the probability.
    features = objectives.features_for(
        "mlm", tf.constant(windows), tf.range(len(windows), dtype=tf.int64), seed,
        objectives.TRAIN_STREAM, spec)
    self.examples = {name: value.numpy() for name, value in features.items()}
    self.num_batches = num_batches

  def predicted_fraction(self) -> float:
    """Share of tokens the MLM loss predicts (weight 1) in these batches."""
    return float(self.examples["weights"].mean())

  def max_predictions_per_sequence(self) -> int:
    """The most predicted positions in one sequence: the smallest per-sequence
    `mask_positions` length that drops no target."""
    return int((self.examples["weights"] > 0).sum(axis=1).max())

  def train_dataset(self, input_context, global_batch_size, objective, start_example=0):
    del objective, start_example
    replicas = input_context.num_replicas_in_sync if input_context else 1
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline = input_context.input_pipeline_id if input_context else 0
    per_replica = global_batch_size // replicas
    # Global batch i, replica r holds rows [i*B + r*b, i*B + (r+1)*b); this pipeline keeps
    # the replicas it feeds (r % pipelines == pipeline), in order.
    rows = np.arange(self.num_batches * global_batch_size).reshape(
        self.num_batches, replicas, per_replica)[:, pipeline::pipelines].reshape(-1, per_replica)
    local = {name: value[rows] for name, value in self.examples.items()}
    dataset = tf.data.Dataset.from_tensor_slices(local).cache().repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF)
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


# ---- models --------------------------------------------------------------------------------

class KerasHubMaskedLM(keras.Model):
  """keras-hub's BERT backbone + tied masked-LM head, with lag_tf's model interface.

  `encode(token_ids)` is the backbone's sequence output; `predict_logits(hidden)` runs
  keras-hub's `MaskedLMHead` on any rows of hidden states, so the Trainer's masked-LM loss
  gathers the predicted positions for keras-hub exactly as it does for lag_tf (one flat set
  of rows per replica batch: the same work as lag_tf's head, and less than keras-hub's own
  per-sequence `mask_positions`, which must be padded to the longest sequence's count).
  The unused pooler is frozen; segment ids are 0 and the padding mask is all ones (packed
  batches).
  """

  def __init__(self, config: TransformerConfig, **kwargs):
    super().__init__(name="keras_hub_bert_mlm", **kwargs)
    import keras_hub  # Only the benchmark needs it here.
    self.backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers,
        num_heads=config.num_heads, hidden_dim=config.d_model,
        intermediate_dim=config.d_ff, dropout=config.dropout,
        max_sequence_length=config.max_len)
    # MLM training leaves the pooler without a gradient (BertMaskedLM's fit skips it too).
    self.backbone.pooled_dense.trainable = False
    self.head = keras_hub.layers.MaskedLMHead(
        vocabulary_size=config.vocab_size, token_embedding=self.backbone.token_embedding,
        intermediate_activation="gelu",
        kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02), name="mlm_head")

  def encode(self, token_ids, training=False):
    ones = keras.ops.ones_like(token_ids)
    outputs = self.backbone({"token_ids": token_ids, "segment_ids": ones * 0,
                             "padding_mask": ones}, training=training)
    return outputs["sequence_output"]

  def predict_logits(self, hidden):
    # MaskedLMHead takes [batch, length, d] and positions [batch, n]: present the rows as one
    # sequence whose positions are all of its rows.
    shape = keras.ops.shape(hidden)
    rows = keras.ops.reshape(hidden, (1, -1, shape[-1]))
    positions = keras.ops.arange(keras.ops.shape(rows)[1], dtype="int32")[None]
    logits = keras.ops.cast(self.head(rows, positions), "float32")
    return keras.ops.reshape(logits, tuple(shape[:-1]) + (-1,))

  def call(self, token_ids, training=False):
    return self.predict_logits(self.encode(token_ids, training=training))


def per_sequence_loss(positions_per_sequence: int):
  """keras-hub's own masked-LM interface as the Trainer's `loss_fn`: `mask_positions` [b, P]
  (the first P predicted positions of each sequence, padded with weight-0 positions), the head
  gathering them per sequence, as `BertMaskedLM` does. With P = the data's largest count
  the loss equals lag_tf's."""

  def replica_loss(model: KerasHubMaskedLM, batch, training):
    weights = tf.cast(batch["weights"], tf.float32)
    length = weights.shape[1]
    order = tf.range(length)[None]
    key = tf.where(weights > 0, order, order + length)
    _, positions = tf.math.top_k(-key, k=positions_per_sequence, sorted=True)
    hidden = model.encode(batch["inputs"], training=training)
    logits = tf.cast(model.head(hidden, positions), tf.float32)
    return losses.token_sums(logits, tf.gather(batch["targets"], positions, batch_dims=1),
                             tf.gather(weights, positions, batch_dims=1))

  return replica_loss


def build_keras_hub(config: TransformerConfig):
  model = KerasHubMaskedLM(config)
  model(np.zeros((1, config.max_len), np.int32))
  return model


def make_trainer(kind: str, jit_compile: bool, data: FixedBatches, model_dir: str,
                 steps_per_loop: int, seed: int, config: TransformerConfig = CONFIG,
                 every_position: bool = False,
                 per_sequence_positions: bool = False) -> trainer_lib.Trainer:
  """A real lag_tf Trainer; for 'keras_hub' its model is the keras-hub one (same loop).

  every_position: run the vocabulary head at every position (lag_tf before the gathered
  masked-LM head; reported for reference, never compared).
  per_sequence_positions: keras-hub only: its own `mask_positions` interface instead of
  lag_tf's flat gather of predicted rows.
  """
  kwargs = dict(global_batch_size=GLOBAL_BATCH_SIZE, train_steps=10**9,
                steps_per_loop=steps_per_loop, eval_every=0, checkpoint_every=steps_per_loop,
                jit_compile=jit_compile, seed=seed, name=kind)
  strategy = tf.distribute.get_strategy()
  if kind != "lag_tf":
    config = CONFIG
    kwargs["model_fn"] = build_keras_hub
  if every_position:
    kwargs["loss_fn"] = losses.token_loss_sums  # No mask probability: the head everywhere.
  if per_sequence_positions:
    kwargs["loss_fn"] = per_sequence_loss(data.max_predictions_per_sequence())
  return trainer_lib.Trainer(config, data, strategy, model_dir, **kwargs)


# ---- measurements --------------------------------------------------------------------------

class TrainContender:
  def __init__(self, label, trainer, steps, tokens_per_step, flops_per_token, in_ratio=True):
    self.label = label
    self.trainer = trainer
    self.steps = steps
    self.tokens_per_step = tokens_per_step
    self.flops_per_token = flops_per_token
    self.in_ratio = in_ratio  # bf16 rows are reported, not compared (not a fair MFU lever)
    self.iterator = trainer.engine.train_iterator()  # The Trainer's own distributed input.
    self.seconds_per_step = []
    self.peak_flops = []  # the matmul's FLOP/s measured right after each measurement
    self.losses = []

  def _run(self, steps):
    started = time.perf_counter()
    loss = self.trainer.engine.run_steps(self.iterator, steps)
    return time.perf_counter() - started, loss

  def warm_up(self, steps):
    self._run(max(steps, 1))  # Traces (and XLA-compiles) the loop.

  def measure(self):
    seconds, loss = self._run(self.steps)
    self.seconds_per_step.append(seconds / self.steps)
    self.losses.append(loss)

  def tokens_per_second(self, repeat=None):
    if repeat is None:
      return self.tokens_per_step / statistics.median(self.seconds_per_step)
    return self.tokens_per_step / self.seconds_per_step[repeat]

  def mfu(self):
    """Median over repeats of (counted FLOP/s / the matmul's FLOP/s measured next to it)."""
    return statistics.median(self.flops_per_token * self.tokens_per_second(r) / peak
                             for r, peak in enumerate(self.peak_flops))


class Matmul:
  def __init__(self, n, calls, jit_compile):
    self.label = f"matmul {n}x{n} f32" + (" XLA" if jit_compile else "")
    self.n = n
    self.calls = calls
    rng = np.random.default_rng(1)
    self.a = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    self.b = tf.constant(rng.standard_normal((n, n), dtype=np.float32))
    # The sum makes the whole product an output (nothing to prune) at O(n^2) extra cost.
    self.fn = tf.function(lambda a, b: tf.reduce_sum(tf.linalg.matmul(a, b)),
                          jit_compile=jit_compile)
    self.seconds_per_call = []

  def warm_up(self, steps=None):
    del steps
    self.fn(self.a, self.b).numpy()

  def measure(self) -> float:
    """Times `calls` matmuls; returns their FLOP/s (2 n^3 per call)."""
    started = time.perf_counter()
    for _ in range(self.calls):
      self.fn(self.a, self.b).numpy()
    self.seconds_per_call.append((time.perf_counter() - started) / self.calls)
    return 2.0 * self.n**3 / self.seconds_per_call[-1]

  def flops_per_second(self):
    return 2.0 * self.n**3 / statistics.median(self.seconds_per_call)


class StepMatmuls:
  """The training step's matmuls and nothing else, in one `tf.function` (oneDNN, or XLA).

  Every dense layer's forward product and both backward products (dX = dY W^T, dW = X^T dY),
  attention's six batched products per layer (scores, probabilities x values, and their
  gradients) and the gathered head's products, at lag_tf's shapes. Each product is consumed
  through one element, so nothing is pruned and no extra pass over its output is timed. The
  time is what a step would take if everything but its matmuls were free: counted FLOPs over
  it bound the MFU any implementation of this step can reach with these kernels.
  """

  def __init__(self, config: TransformerConfig, global_batch_size: int, head_rows: int,
               jit_compile: bool = False, calls: int = 2):
    self.label = f"step's matmuls only ({'XLA' if jit_compile else 'oneDNN'})"
    self.calls = calls
    tokens = global_batch_size * config.max_len
    d, a, f, v = config.d_model, config.attention_width, config.d_ff, config.vocab_size
    # (rows, inner, cols) of y[rows, cols] = x[rows, inner] w[inner, cols], and how often.
    dense = [((tokens, d, a), 3 * config.num_layers), ((tokens, a, d), config.num_layers),
             ((tokens, d, f), config.num_layers), ((tokens, f, d), config.num_layers),
             ((head_rows, d, d), 1), ((head_rows, d, v), 1)]
    rng = np.random.default_rng(2)

    def constant(*shape):
      # Variables, not constants: grappler would fold matmuls of constants at trace time.
      return tf.Variable(rng.standard_normal(shape, dtype=np.float32), trainable=False)

    # (a, b, transpose_a, transpose_b). Every product gets operands of its own: identical
    # products would be merged by common-subexpression elimination (grappler and XLA).
    products = []
    self.flops = 0.0
    for (rows, inner, cols), repeats in dense:
      for _ in range(repeats):
        x, w, dy = constant(rows, inner), constant(inner, cols), constant(rows, cols)
        products += [(x, w, False, False), (dy, w, False, True), (x, dy, True, False)]
        self.flops += 3 * 2.0 * rows * inner * cols
    heads = global_batch_size * config.num_heads
    length, key_dim = config.max_len, config.key_dim
    for _ in range(2 * config.num_layers):
      q, k = constant(heads, length, key_dim), constant(heads, length, key_dim)
      p = constant(heads, length, length)
      # Per layer: scores Q K^T and its gradient dS^T Q-like, P V and its gradients.
      products += [(q, k, False, True), (p, k, False, False), (p, q, True, False)]
      self.flops += 3 * 2.0 * heads * length * length * key_dim

    def run():
      total = tf.constant(0.0)
      for x, w, transpose_a, transpose_b in products:
        y = tf.linalg.matmul(x, w, transpose_a=transpose_a, transpose_b=transpose_b)
        total += tf.reshape(y, [-1])[0]
      return total

    self.fn = tf.function(run, jit_compile=jit_compile)
    self.seconds = []

  def warm_up(self, steps=None):
    del steps
    self.fn().numpy()

  def measure(self):
    started = time.perf_counter()
    for _ in range(self.calls):
      self.fn().numpy()
    self.seconds.append((time.perf_counter() - started) / self.calls)


class UpdateOnly:
  """The optimizer half of a training step and nothing else: the step engine's own
  `apply_gradients` (global-norm clipping + AdamW) on lag_tf's variables, with fixed
  gradients, `steps` updates per XLA-compiled call (its fastest form here). Both contenders
  run exactly this in the shared loop, so no model implementation can make it shorter.
  """

  def __init__(self, engine: StepEngine, steps: int):
    self.label = "optimizer update only (XLA)"
    self.steps = steps
    rng = np.random.default_rng(3)
    gradients = [tf.constant(1e-3 * rng.standard_normal(v.shape, dtype=np.float32))
                 for v in engine.model.trainable_variables]
    update = tf.function(lambda: engine.apply_gradients(gradients), jit_compile=True)

    def run(num_steps):
      for _ in tf.range(num_steps):
        update()
      return engine.optimizer.iterations

    self.fn = tf.function(run)
    self.seconds = []

  def warm_up(self, steps=None):
    del steps
    self.fn(tf.constant(1)).numpy()

  def measure(self):
    started = time.perf_counter()
    self.fn(tf.constant(self.steps)).numpy()
    self.seconds.append((time.perf_counter() - started) / self.steps)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--steps", type=int, default=10,
                      help="timed training steps per measurement (one tf.function call)")
  parser.add_argument("--warmup_steps", type=int, default=2,
                      help="untimed steps per contender before timing (tracing, XLA)")
  parser.add_argument("--repeats", type=int, default=5,
                      help="measurements per contender, alternated; medians are reported")
  parser.add_argument("--seed", type=int, default=0, help="data and initialization seed")
  parser.add_argument("--matmul_size", type=int, default=4096, help="n of the n x n matmul")
  parser.add_argument("--matmul_calls", type=int, default=2,
                      help="matmuls timed after each training measurement")
  parser.add_argument("--num_batches", type=int, default=8,
                      help="distinct fixed global batches, cycled")
  parser.add_argument("--bf16", action="store_true",
                      help="also time lag_tf under mixed_bfloat16 (reported, never compared)")
  args = parser.parse_args(argv)
  # One tf.function per Trainer is by design here; silence TF's retracing warning about it.
  tf.get_logger().setLevel("ERROR")
  if min(args.steps, args.repeats, args.num_batches, args.matmul_calls) < 1:
    parser.error("--steps, --repeats, --num_batches and --matmul_calls must be positive")

  data = FixedBatches(CONFIG, GLOBAL_BATCH_SIZE, args.num_batches, args.seed)
  tokens_per_step = GLOBAL_BATCH_SIZE * CONFIG.max_len
  predicted = data.predicted_fraction()
  # Model FLOPs: the head counted at the predicted positions only, where it runs.
  flops_per_token = training_flops_per_token(CONFIG, predicted_fraction=predicted)
  every_token_flops = training_flops_per_token(CONFIG, predicted_fraction=1.0)  # Reference.
  head_rows = losses.prediction_capacity(tokens_per_step, data.masking.probability)
  model_dir = tempfile.mkdtemp(prefix="lag_tf_throughput_")
  # (kind, XLA, config, head variant): 'gathered' = lag_tf's flat gather of predicted rows
  # (losses.py), 'per-sequence' = keras-hub's own mask_positions, 'every-position' = the
  # head at every token. Only lag_tf gathered and keras-hub per-sequence (each one's own
  # interface) enter the ratio; the other rows show where the difference comes from.
  settings = [("lag_tf", jit, CONFIG, "gathered") for jit in (True, False)]
  settings += [("keras_hub", jit, CONFIG, "per-sequence") for jit in (True, False)]
  settings += [("keras_hub", True, CONFIG, "gathered"), ("lag_tf", True, CONFIG, "every-position")]
  settings += [("lag_tf", False, CONFIG.replace(fused_kernels=False), "gathered")]
  if args.bf16:
    bf16 = CONFIG.replace(dtype_policy="mixed_bfloat16")
    settings += [("lag_tf", True, bf16, "gathered"), ("lag_tf", False, bf16, "gathered")]
  contenders = []
  for kind, jit, config, head in settings:
    is_bf16 = config.dtype_policy != "float32"
    label = f"{kind} {'XLA' if jit else 'no XLA'}{' bf16' if is_bf16 else ''} {head} head"
    if kind == "lag_tf" and not config.fused_kernels:
      label += ", Keras layers"
    trainer = make_trainer(kind, jit, data, f"{model_dir}/{len(contenders)}", args.steps,
                           args.seed, config, every_position=head == "every-position",
                           per_sequence_positions=head == "per-sequence")
    own_interface = head == ("gathered" if kind == "lag_tf" else "per-sequence")
    in_ratio = own_interface and not is_bf16 and config.fused_kernels
    contenders.append(TrainContender(label, trainer, args.steps, tokens_per_step,
                                     flops_per_token, in_ratio=in_ratio))
  peak = Matmul(args.matmul_size, args.matmul_calls, jit_compile=False)
  peak_xla = Matmul(args.matmul_size, args.matmul_calls, jit_compile=True)
  matmuls_only = StepMatmuls(CONFIG, GLOBAL_BATCH_SIZE, head_rows)
  matmuls_only_xla = StepMatmuls(CONFIG, GLOBAL_BATCH_SIZE, head_rows, jit_compile=True)
  update_only = UpdateOnly(make_trainer("lag_tf", False, data, f"{model_dir}/update_only",
                                        args.steps, args.seed).engine, args.steps)
  for thing in contenders + [peak, peak_xla, matmuls_only, matmuls_only_xla, update_only]:
    thing.warm_up(args.warmup_steps)
  bound_ratios = []  # counted FLOP/s at the matmuls-only time / the matmul peak, per repeat
  for repeat in range(args.repeats):
    # A B C D, then D C B A, ...: drifts in the machine's load hit every contender alike.
    for contender in (contenders if repeat % 2 == 0 else contenders[::-1]):
      contender.measure()
      contender.peak_flops.append(peak.measure())  # paired: same moment's load
    peak_xla.measure()
    matmuls_only_xla.measure()
    matmuls_only.measure()
    update_only.measure()
    bound_ratios.append(flops_per_token * tokens_per_step / matmuls_only.seconds[-1]
                        / peak.measure())
    print(f"repeat {repeat + 1}/{args.repeats} done", file=sys.stderr, flush=True)

  rows = []
  for c in contenders:
    step_time = statistics.median(c.seconds_per_step)
    rows.append((c.label, f"{c.tokens_per_second():,.0f}", f"{min(c.seconds_per_step) * 1e3:,.0f}",
                 f"{step_time * 1e3:,.0f}", f"{flops_per_token * c.tokens_per_second() / 1e9:,.1f}",
                 f"{c.mfu():.3f}", f"{c.losses[-1]:.3f}"))
  for bound in (matmuls_only, matmuls_only_xla):
    bound_seconds = statistics.median(bound.seconds)
    rows.append((bound.label, f"{tokens_per_step / bound_seconds:,.0f}",
                 f"{min(bound.seconds) * 1e3:,.0f}", f"{bound_seconds * 1e3:,.0f}",
                 f"{flops_per_token * tokens_per_step / bound_seconds / 1e9:,.1f}",
                 f"{statistics.median(bound_ratios):.3f}" if bound is matmuls_only else "", ""))
  update_seconds = statistics.median(update_only.seconds)
  rows.append((update_only.label, "", f"{min(update_only.seconds) * 1e3:,.0f}",
               f"{update_seconds * 1e3:,.0f}", "", "", ""))
  for matmul in (peak, peak_xla):
    rows.append((matmul.label, "", f"{min(matmul.seconds_per_call) * 1e3:,.0f}",
                 f"{statistics.median(matmul.seconds_per_call) * 1e3:,.0f}",
                 f"{matmul.flops_per_second() / 1e9:,.1f}", "", ""))
  header = ("setting", "tokens/s", "best ms", "median ms", "GFLOP/s", "MFU", "loss")
  widths = [max(len(str(row[i])) for row in rows + [header]) for i in range(len(header))]
  print(f"BERT-mini MLM training step: {CONFIG.num_layers} layers, d_model {CONFIG.d_model}, "
        f"{CONFIG.num_heads} heads, FFN {CONFIG.d_ff}, sequence {CONFIG.max_len}, batch "
        f"{GLOBAL_BATCH_SIZE}, vocabulary {CONFIG.vocab_size} ({tokens_per_step} tokens/step, "
        f"{predicted:.1%} predicted; the gathered head runs {head_rows} rows, keras-hub's "
        f"per-sequence head {GLOBAL_BATCH_SIZE} x {data.max_predictions_per_sequence()}); "
        f"{args.steps} steps "
        f"per tf.function call, {args.repeats} alternated repeats.")
  print(f"tokens/s, GFLOP/s: medians; GFLOP/s = {flops_per_token / 1e6:.2f} MFLOP/token "
        f"(lag_tf's count with the head at the predicted positions, also for keras-hub and "
        f"the every-position row; counting the head at every token would be "
        f"{every_token_flops / 1e6:.2f}) x tokens/s; MFU: median over repeats of GFLOP/s / "
        f"the f32 matmul's FLOP/s timed right after; matmul rows: ms per call.")
  for row in (header,) + tuple(rows):
    print("  ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                    for i, (cell, width) in enumerate(zip(row, widths))))
  print(f"MFU bound: the step's matmuls alone reach MFU {statistics.median(bound_ratios):.3f} "
        f"(counted FLOPs / their time / the matmul peak); no implementation of this step with "
        f"these kernels goes above it.")
  if peak_xla.flops_per_second() > peak.flops_per_second():
    print("note: the XLA matmul was faster than the plain one; MFU uses the plain one.")

  def best(kind):
    candidates = [c for c in contenders if c.label.startswith(kind) and c.in_ratio]
    return max(candidates, key=lambda c: c.tokens_per_second())

  ours, theirs = best("lag_tf"), best("keras_hub")
  # Paired too: each repeat's ratio compares measurements taken a few seconds apart.
  ratio = statistics.median(ours.tokens_per_second(r) / theirs.tokens_per_second(r)
                            for r in range(args.repeats))
  # A lag_tf step cannot be shorter than its matmuls plus the shared optimizer update.
  ratio_bound = statistics.median(
      theirs.seconds_per_step[r] / (matmuls_only.seconds[r] + update_only.seconds[r])
      for r in range(args.repeats))
  print(f"best: lag_tf = {ours.label}, keras_hub = {theirs.label}; ratio and MFU are medians "
        f"of per-repeat paired values")
  print(f"ratio bound: keras_hub's best step / (the step's matmuls + the optimizer update) = "
        f"{ratio_bound:.3f}; in this loop no lag_tf model implementation with these kernels "
        f"goes above it (LayerNorm, GELU, softmax and the loss are not free).")
  shutil.rmtree(model_dir, ignore_errors=True)  # only empty checkpoint/metrics dirs
  print(f"throughput_ratio={ratio:.3f} mfu={ours.mfu():.3f}")


if __name__ == "__main__":
  main()
