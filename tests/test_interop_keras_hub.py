"""keras-hub: lag_tf decoders that map exactly (GPT-2: tanh GELU, OPT: ReLU) export to keras-hub
presets computing lag_tf's logits, and keras-hub backbones import with keras-hub's logits.
keras-hub is in requirements.txt: these tests run in CI, never skip."""

import keras_hub
import numpy as np
import pytest

from interop_fixtures import grown_state, lag_model
from growth_fixtures import random_tokens
from lag_tf.interop import formats, keras_hub_io, source


CAUSAL_LM = {"GPT2Backbone": "GPT2CausalLM", "OPTBackbone": "OPTCausalLM"}


def _inputs(tokens):
  return {"token_ids": tokens, "padding_mask": np.ones_like(tokens)}


@pytest.mark.parametrize("activation,tie", [("gelu_tanh", True), ("relu", False)])
def test_grown_decoder_exports_to_a_keras_hub_preset_and_back(tmp_path, activation, tie):
  state = grown_state("decoder", tie, activation=activation, layer_norm_epsilon=1e-5)
  tokens = random_tokens(state.config, seed=1, batch=3)
  expected = np.asarray(lag_model(state)(tokens))
  preset = str(tmp_path / "preset")
  formats.write(state, "keras_hub", preset)
  backbone = keras_hub.models.Backbone.from_preset(preset)
  assert type(backbone).__name__ == keras_hub_io.BACKBONE_BY_ACTIVATION[activation]
  head = keras_hub_io.head_weights(state)
  if tie:  # keras-hub's own causal LM, plus lag_tf's output bias.
    causal_lm = getattr(keras_hub.models, CAUSAL_LM[type(backbone).__name__])(backbone=backbone)
    logits = np.asarray(causal_lm(_inputs(tokens)))
  else:
    logits = np.asarray(backbone(_inputs(tokens))) @ head["output_kernel"]
  np.testing.assert_allclose(logits + head["output_bias"], expected, atol=1e-4)
  back = keras_hub_io.state_from_preset(preset)
  assert back.config == state.config
  np.testing.assert_allclose(np.asarray(lag_model(back)(tokens)), expected, atol=1e-4)


@pytest.mark.parametrize("cls", ["GPT2Backbone", "OPTBackbone"])
def test_a_keras_hub_backbone_imports_with_keras_hub_logits(tmp_path, cls):
  backbone = getattr(keras_hub.models, cls)(
      vocabulary_size=40, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
      dropout=0.0, max_sequence_length=12)
  preset = str(tmp_path / "preset")
  backbone.save_to_preset(preset)  # Stands in for a downloaded preset.
  causal_lm = getattr(keras_hub.models, CAUSAL_LM[cls])(backbone=backbone)
  state = source.load_base_state(preset)
  assert state.config.tie_embeddings and not state.weights["head"]["output/bias"].any()
  tokens = random_tokens(state.config, seed=2, batch=2)
  np.testing.assert_allclose(np.asarray(lag_model(state)(tokens)),
                             np.asarray(causal_lm(_inputs(tokens))), atol=1e-4)
