"""Which global examples each input pipeline produces, so every strategy sees one stream.

The stream of examples is numbered globally: global batch s holds examples
s*B .. s*B + B - 1, and within it replica i (0 <= i < R, in tf.distribute's replica
order) gets examples s*B + i*b .. s*B + i*b + b - 1, with b = B // R.

A pipeline (one per worker: P = num_input_pipelines, p = input_pipeline_id) serves its
r = R // P local replicas, which are global replicas p*r .. p*r + r - 1. tf.distribute
hands a pipeline's consecutive per-replica batches to its local replicas round-robin:
local batch k goes to local replica k % r, for step k // r. Verified with TF 2.21 on
MirroredStrategy over 2 logical CPUs and `distribute_datasets_from_function` (input
context: 1 pipeline, id 0, 2 replicas): a pipeline yielding batches [0..3], [4..7],
[8..11], ... gave step 0 = ([0..3] on replica 0, [4..7] on replica 1), step 1 =
([8..11], [12..15]). So local batch k of pipeline p must hold global examples

    g = start + (k // r) * B + (p * r + k % r) * b + j,   j = 0 .. b - 1

which makes the global batch at every step the same whatever R and P are: same losses
on one device, on a MirroredStrategy and on a MultiWorkerMirroredStrategy.
"""

from __future__ import annotations

import dataclasses
import numbers

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class ShardLayout:
  """The slice of the global stream that one input pipeline produces."""

  global_batch_size: int  # B
  num_replicas: int  # R
  num_pipelines: int  # P
  pipeline_id: int  # p

  def __post_init__(self):
    if not isinstance(self.global_batch_size, numbers.Integral) or self.global_batch_size <= 0:
      raise ValueError(
          f'global_batch_size must be a positive int, got {self.global_batch_size!r}')
    if self.global_batch_size % self.num_replicas:
      raise ValueError(
          f'global_batch_size {self.global_batch_size} is not divisible by the '
          f'{self.num_replicas} replicas in sync')
    if self.num_pipelines <= 0 or self.num_replicas % self.num_pipelines:
      raise ValueError(
          f'{self.num_replicas} replicas cannot be split evenly over '
          f'{self.num_pipelines} input pipelines')
    if not 0 <= self.pipeline_id < self.num_pipelines:
      raise ValueError(
          f'input_pipeline_id {self.pipeline_id} is not in [0, {self.num_pipelines})')

  @classmethod
  def from_input_context(
      cls, input_context: tf.distribute.InputContext | None, global_batch_size: int
  ) -> 'ShardLayout':
    """Layout of the pipeline `input_context` describes (None: the only pipeline)."""
    input_context = input_context or tf.distribute.InputContext()
    return cls(
        global_batch_size=global_batch_size,
        num_replicas=input_context.num_replicas_in_sync,
        num_pipelines=input_context.num_input_pipelines,
        pipeline_id=input_context.input_pipeline_id)

  @property
  def per_replica_batch_size(self) -> int:  # b
    return self.global_batch_size // self.num_replicas

  @property
  def replicas_per_pipeline(self) -> int:  # r
    return self.num_replicas // self.num_pipelines

  def local_batch_global_ids(self, local_batch: tf.Tensor, start_example: int) -> tf.Tensor:
    """int64 [b]: global example numbers of this pipeline's local batch `local_batch`."""
    local_batch = tf.cast(local_batch, tf.int64)
    r = self.replicas_per_pipeline
    step = local_batch // r
    replica = self.pipeline_id * r + local_batch % r
    first = start_example + step * self.global_batch_size + (
        replica * self.per_replica_batch_size)
    return first + tf.range(self.per_replica_batch_size, dtype=tf.int64)

  def owns_chunk(self, chunk: tf.Tensor) -> tf.Tensor:
    """Whether chunk `chunk` of b consecutive global examples belongs to this pipeline.

    Chunk c holds examples c*b .. c*b + b - 1, i.e. replica c % R of step c // R.
    """
    replica = tf.cast(chunk, tf.int64) % self.num_replicas
    return tf.equal(replica // self.replicas_per_pipeline, self.pipeline_id)
