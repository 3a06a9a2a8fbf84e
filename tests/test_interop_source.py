"""Import: a `.keras` file exported by lag_tf becomes a run's base model (`base_model.source`),
with the source's logits, and the run skips base training."""

import json
import os

import gin
import numpy as np
import pytest

from interop_fixtures import grown_state, lag_model
from lag_fixtures import BASE_STEPS, parse_lag_config, small_pool, strategy
from lag_tf.experiments.grow import grow_experiment
from growth_fixtures import random_tokens, randomized_state
from lag_tf.interop import formats, keras_export, locate, source
from lag_tf.models import TransformerConfig
from lag_tf.model_dir_store import read_metrics


@pytest.mark.parametrize("kind,tie", [("encoder", True), ("decoder", False)])
def test_imported_state_computes_the_source_logits(tmp_path, kind, tie):
  state = grown_state(kind, tie)
  path = str(tmp_path / "m.keras")
  formats.write(state, "keras", path)
  imported = source.imported_state(path, state.config)
  assert imported.config == state.config  # The run's config, fused kernels included.
  tokens = random_tokens(state.config, seed=3)
  np.testing.assert_allclose(np.asarray(lag_model(imported)(tokens)),
                             np.asarray(lag_model(state)(tokens)), atol=1e-4)


def test_a_mismatched_or_unreadable_source_is_refused(tmp_path):
  state = grown_state("decoder", tie=False)
  path = str(tmp_path / "m.keras")
  formats.write(state, "keras", path)
  expected = state.config.replace(num_layers=4, tie_embeddings=True, dropout=0.1)
  with pytest.raises(ValueError, match=r"num_layers=3 \(run: 4\), tie_embeddings=False "
                                       r"\(run: True\)$"):
    source.imported_state(path, expected)
  with pytest.raises(ValueError, match="no such file"):
    source.load_base_state(str(tmp_path / "missing.keras"))
  with pytest.raises(ValueError, match="expected a .keras file"):
    source.load_base_state(str(tmp_path))


def test_grow_from_an_imported_base_skips_base_training(tmp_path, data_dir):
  parse_lag_config(data_dir)
  with gin.unlock_config():
    config = TransformerConfig()
  base = randomized_state(config, seed=5)
  path = str(tmp_path / "base.keras")
  keras_export.save_keras(base, path)
  parse_lag_config(data_dir, extra=[f"base_model.source = '{path}'"])
  model_dir = str(tmp_path / "run")
  grow_experiment(strategy(), model_dir, pool=small_pool(), candidate="zero_top",
                  base_steps=BASE_STEPS)
  growth = json.loads(open(os.path.join(model_dir, "growth.json")).read())
  assert growth["step"] == 0
  assert not any(r.loss is not None for r in read_metrics(os.path.join(model_dir, "metrics.jsonl")))
  # zero_top preserves the function: the grown model computes the imported model's logits.
  grown = locate.load_state(locate.locate(model_dir))
  assert grown.config.num_layers == 4
  tokens = random_tokens(config, seed=4)
  np.testing.assert_allclose(np.asarray(lag_model(grown)(tokens)),
                             np.asarray(keras_export.load_keras(path)(tokens)), atol=1e-4)
