"""A `ModelState` as a `.keras` file or a TF SavedModel, and a `.keras` file back as a state.

`.keras`: lag_tf's own `Transformer`, registered with Keras as `lag_tf>ExportedTransformer` (its
config is the `TransformerConfig` dict), so `keras.saving.load_model(path)` rebuilds it after
`import lag_tf.interop.keras_export` (Keras imports only its own packages by itself). The loaded
object is the same model as in training: `weight_tree()`, `encode`, `predict_logits`, growth.
Exported models run on plain `keras.ops` (`fused_kernels=False`: same function and variables, no
TF-only custom kernels), so the file is as portable as Keras 3 itself.

SavedModel: a `tf.Module` with the model and one signature, `serving_default`:
token_ids int32 [batch, length <= max_len] -> {"logits": float32 [batch, length, vocab]}; loading
it needs TensorFlow only.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from lag_tf.training import keras_io
from lag_tf.growth.state import ModelState
from lag_tf.models.config import TransformerConfig
from lag_tf.models.transformer import Transformer

SIGNATURE = "serving_default"


@keras.saving.register_keras_serializable(package="lag_tf")
class ExportedTransformer(Transformer):
  """`Transformer` with a Keras config, so `.keras` files rebuild it."""

  def get_config(self) -> dict:
    return {"config": self.config.to_dict()}

  @classmethod
  def from_config(cls, config: dict) -> "ExportedTransformer":
    return cls(TransformerConfig.from_dict(config["config"]))


def to_keras_model(state: ModelState) -> ExportedTransformer:
  """A built `ExportedTransformer` holding `state`'s weights."""
  config = state.config.replace(fused_kernels=False)  # The same function, on plain keras.ops.
  model = ExportedTransformer(config)
  model.build((1, config.max_len))
  keras_io.assign_state(ModelState(config, state.weights), model)
  return model


def save_keras(state: ModelState, path: str) -> None:
  if not path.endswith(".keras"):
    raise ValueError(f"--out={path}: a Keras file must end in .keras")
  to_keras_model(state).save(path)


class _Serving(tf.Module):

  def __init__(self, model: Transformer):
    super().__init__(name="lag_tf_serving")
    self.model = model

  @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32, name="token_ids")])
  def serve(self, token_ids):
    return {"logits": self.model(token_ids, training=False)}


def save_saved_model(state: ModelState, path: str) -> None:
  module = _Serving(to_keras_model(state))
  tf.saved_model.save(module, path, signatures={SIGNATURE: module.serve})


def load_keras(path: str) -> ExportedTransformer:
  """Loads a `.keras` file written by `save_keras` (ValueError if it holds something else)."""
  model = keras.saving.load_model(path, compile=False)
  if not isinstance(model, Transformer):
    raise ValueError(f"{path} holds a {type(model).__name__}, not a model exported by lag_tf")
  return model


def state_from_keras(path: str) -> ModelState:
  """The weights of a `.keras` file written by `save_keras`, as a `ModelState` (no optimizer
  state; the config keeps the file's options, `fused_kernels=False`)."""
  return keras_io.state_from_model(load_keras(path))
