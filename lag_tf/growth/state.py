"""`ModelState`: a Transformer's config plus its weights (and AdamW moments) as numpy trees.

The weight tree has exactly the layout of `Transformer.weight_tree()` (see
lag_tf/models/transformer.py): `embeddings` and `final_norm` and `head` dicts, and `blocks`, a
list of per-block dicts keyed like 'query/kernel'. The AdamW first and second moments, when
present, are trees of the same layout. Everything here is numpy: growth operators are pure
functions on these trees. The two Keras adapters live in lag_tf/training/keras_io.py.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Iterator, Optional, Tuple

import numpy as np

from lag_tf.models.config import TransformerConfig

Tree = Dict[str, Any]

# Keras' TruncatedNormal(stddev=0.02), the initializer of every kernel and embedding in the model.
INIT_STDDEV = 0.02

BLOCK_KERNELS = ("query", "key", "value", "attention_output", "ffn_inner", "ffn_output")
# The projections that write into the residual stream; zeroing them makes a block the identity.
RESIDUAL_OUTPUTS = ("attention_output", "ffn_output")


def block_shapes(config: TransformerConfig) -> Dict[str, Tuple[int, ...]]:
  """Leaf shapes of one block, in the order of `TransformerBlock.weight_dict()`."""
  d, a, f = config.d_model, config.attention_width, config.d_ff
  layers = [("attention_norm", None), ("query", (d, a)), ("key", (d, a)), ("value", (d, a)),
            ("attention_output", (a, d)), ("ffn_norm", None), ("ffn_inner", (d, f)),
            ("ffn_output", (f, d))]
  shapes = {}
  for layer, kernel in layers:
    if kernel is None:
      shapes[f"{layer}/gamma"] = shapes[f"{layer}/beta"] = (d,)
    else:
      shapes[f"{layer}/kernel"], shapes[f"{layer}/bias"] = kernel, (kernel[1],)
  return shapes


def weight_shapes(config: TransformerConfig) -> Tree:
  """The shape of every leaf of the weight tree of a model built from `config`."""
  d, v = config.d_model, config.vocab_size
  head = {"output/bias": (v,)}
  if config.kind == "encoder":
    head.update({"transform/kernel": (d, d), "transform/bias": (d,),
                 "transform_norm/gamma": (d,), "transform_norm/beta": (d,)})
  if not config.tie_embeddings:
    head["output/kernel"] = (d, v)
  return {
      "embeddings": {"token": (v, d), "position": (config.max_len, d)},
      "blocks": [block_shapes(config) for _ in range(config.num_layers)],
      "final_norm": {"gamma": (d,), "beta": (d,)},
      "head": head,
  }


def tree_map(fn: Callable, tree, *rest):
  """Applies `fn` to corresponding leaves of trees with the weight-tree structure."""
  if isinstance(tree, dict):
    return {key: tree_map(fn, tree[key], *(other[key] for other in rest)) for key in tree}
  if isinstance(tree, list):
    return [tree_map(fn, item, *(other[i] for other in rest)) for i, item in enumerate(tree)]
  return fn(tree, *rest)


def tree_items(tree, prefix: str = "") -> Iterator[Tuple[str, Any]]:
  """(path, leaf) pairs in a stable order; paths look like 'blocks/3/query/kernel'."""
  if isinstance(tree, dict):
    for key in tree:
      yield from tree_items(tree[key], f"{prefix}{key}/")
  elif isinstance(tree, list):
    for i, item in enumerate(tree):
      yield from tree_items(item, f"{prefix}{i}/")
  else:
    yield prefix[:-1], tree


def truncated_normal(rng: np.random.Generator, shape, stddev: float = INIT_STDDEV,
                     dtype=np.float32) -> np.ndarray:
  """Normal(0, stddev) redrawn outside two standard deviations (Keras' TruncatedNormal)."""
  values = rng.standard_normal(shape, dtype=np.float32)
  outside = np.abs(values) > 2.0
  while outside.any():
    values[outside] = rng.standard_normal(int(outside.sum()), dtype=np.float32)
    outside = np.abs(values) > 2.0
  return (values * np.float32(stddev)).astype(dtype, copy=False)


def init_leaf(path: str, shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
  """A freshly initialized leaf, as Keras initializes it: kernels and embeddings random,
  biases and LayerNorm betas zero, LayerNorm gammas one."""
  name = path.rsplit("/", 1)[-1]
  if name == "gamma":
    return np.ones(shape, dtype)
  if name in ("beta", "bias"):
    return np.zeros(shape, dtype)
  return truncated_normal(rng, shape, dtype=dtype)


def init_weights(config: TransformerConfig, rng: np.random.Generator) -> Tree:
  """A freshly initialized weight tree (same distributions as `build_transformer`)."""
  def init(leaves):
    return {key: init_leaf(key, shape, rng) for key, shape in leaves.items()}
  shapes = weight_shapes(config)
  return {"embeddings": init(shapes["embeddings"]), "blocks": [init(b) for b in shapes["blocks"]],
          "final_norm": init(shapes["final_norm"]), "head": init(shapes["head"])}


def zeros_like_tree(tree: Tree) -> Tree:
  return tree_map(np.zeros_like, tree)


def check_tree_shapes(config: TransformerConfig, tree: Tree, what: str = "weights") -> None:
  """Raises ValueError naming the first leaf whose path or shape disagrees with `config`."""
  expected = dict(tree_items(weight_shapes(config)))
  actual = {path: tuple(np.shape(leaf)) for path, leaf in tree_items(tree)}
  missing = sorted(set(expected) - set(actual))
  extra = sorted(set(actual) - set(expected))
  if missing or extra:
    raise ValueError(f"ModelState.{what}: missing leaves {missing[:3]}, unexpected leaves "
                     f"{extra[:3]} for {config}")
  for path, shape in expected.items():
    if actual[path] != shape:
      raise ValueError(f"ModelState.{what}[{path}] has shape {actual[path]}, config expects "
                       f"{shape}")


@dataclasses.dataclass(frozen=True, eq=False)
class ModelState:
  """A model's config, weights and (optionally) AdamW state, as numpy.

  weights: the weight tree (layout of `Transformer.weight_tree()`).
  first_moments / second_moments: AdamW's m and v, same layout; both or neither.
  optimizer_step: AdamW's `iterations` (drives the learning-rate schedule).
  moment_ages: per element, how many updates its moments have accumulated (float32, same
    layout): what its bias correction counts (lag_tf/training/optimizers.py). Growth copies a
    copied unit's age and gives fresh units age 0. Default with moments: `optimizer_step`
    everywhere (a model trained from scratch).
  """

  config: TransformerConfig
  weights: Tree
  first_moments: Optional[Tree] = None
  second_moments: Optional[Tree] = None
  optimizer_step: Optional[int] = None
  moment_ages: Optional[Tree] = None

  def __post_init__(self):
    if (self.first_moments is None) != (self.second_moments is None):
      raise ValueError("ModelState: first_moments and second_moments must be given together")
    if self.has_optimizer_state and self.optimizer_step is None:
      raise ValueError("ModelState: optimizer moments given without optimizer_step")
    if self.moment_ages is not None and not self.has_optimizer_state:
      raise ValueError("ModelState: moment_ages given without optimizer moments")
    check_tree_shapes(self.config, self.weights)
    if self.has_optimizer_state:
      check_tree_shapes(self.config, self.first_moments, "first_moments")
      check_tree_shapes(self.config, self.second_moments, "second_moments")
      if self.moment_ages is None:
        step = np.float32(self.optimizer_step)
        object.__setattr__(self, "moment_ages",
                           tree_map(lambda w: np.full(np.shape(w), step, np.float32),
                                    self.weights))
      check_tree_shapes(self.config, self.moment_ages, "moment_ages")

  @classmethod
  def init(cls, config: TransformerConfig, rng: np.random.Generator) -> "ModelState":
    """A freshly initialized state (no optimizer state), without building a Keras model."""
    return cls(config, init_weights(config, rng))

  @property
  def has_optimizer_state(self) -> bool:
    return self.first_moments is not None

  def trees(self) -> Dict[str, Tree]:
    """The weight tree and, when present, the moment trees, keyed by field name."""
    trees = {"weights": self.weights}
    if self.has_optimizer_state:
      trees["first_moments"] = self.first_moments
      trees["second_moments"] = self.second_moments
      trees["moment_ages"] = self.moment_ages
    return trees

  def params(self) -> int:
    """Number of parameters (equals `count_parameters(self.config)`)."""
    return int(sum(np.size(leaf) for _, leaf in tree_items(self.weights)))

  def nbytes(self) -> int:
    return int(sum(np.asarray(leaf).nbytes for tree in self.trees().values()
                   for _, leaf in tree_items(tree)))

  def tree_map(self, fn: Callable[[np.ndarray], np.ndarray]) -> "ModelState":
    """Applies `fn` to every leaf of the weights and of the moments (shapes must not change);
    moment ages are counts, not values: they are copied unchanged."""
    trees = {name: tree_map(np.copy if name == "moment_ages" else fn, tree)
             for name, tree in self.trees().items()}
    return dataclasses.replace(self, **trees)

  def replace(self, **changes) -> "ModelState":
    return dataclasses.replace(self, **changes)

  def without_optimizer_state(self) -> "ModelState":
    return dataclasses.replace(self, first_moments=None, second_moments=None, optimizer_step=None,
                               moment_ages=None)

  def with_zero_optimizer_state(self, optimizer_step: int = 0) -> "ModelState":
    """Fresh moments (zero, age 0) at `optimizer_step` (the schedule's step continues)."""
    return dataclasses.replace(self, first_moments=zeros_like_tree(self.weights),
                               second_moments=zeros_like_tree(self.weights),
                               optimizer_step=int(optimizer_step),
                               moment_ages=tree_map(lambda w: np.zeros(np.shape(w), np.float32),
                                                    self.weights))

  def copy(self) -> "ModelState":
    return self.tree_map(np.copy)

