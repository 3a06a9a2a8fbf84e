"""Export: `.keras` and SavedModel files of grown models compute lag_tf's own logits; the model
dir's final model is the one exported; bad requests exit 2 with one line and never overwrite."""

import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from interop_fixtures import grown_state, lag_model, lag_run_dir, save_checkpoint, write_json
from growth_fixtures import random_tokens, states_equal
from lag_tf.interop import formats, keras_hub_io, locate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Every kind and tie setting as .keras; SavedModel tracing is slower, so two of them.
@pytest.mark.parametrize("kind,tie,saved_model", [("encoder", True, True), ("decoder", False, True),
                                                  ("encoder", False, False),
                                                  ("decoder", True, False)])
def test_exports_match_lag_tf_logits_after_growth(tmp_path, kind, tie, saved_model):
  state = grown_state(kind, tie)
  assert state.config.num_layers == 3 and state.config.d_model == 64
  tokens = random_tokens(state.config, seed=1, batch=3)
  model = lag_model(state)
  expected = np.asarray(model(tokens))
  assert np.abs(expected).max() > 0.1  # Not a vacuous comparison.
  formats.write(state, "keras", str(tmp_path / "m.keras"))
  loaded = keras.saving.load_model(str(tmp_path / "m.keras"))
  np.testing.assert_allclose(np.asarray(loaded(tokens)), expected, atol=1e-4)
  if saved_model:
    formats.write(state, "saved_model", str(tmp_path / "saved"))
    serve = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    served = serve(token_ids=tf.constant(tokens))["logits"].numpy()
    np.testing.assert_allclose(served, expected, atol=1e-4)
    # Sequences shorter than max_len are served too.
    short = serve(token_ids=tf.constant(tokens[:, :5]))["logits"].numpy()
    np.testing.assert_allclose(short, np.asarray(model(tokens[:, :5])), atol=1e-4)
  # Written under a temporary name and renamed: nothing partial is left behind.
  assert sorted(os.listdir(tmp_path)) == ["m.keras"] + (["saved"] if saved_model else [])


def test_write_refuses_to_overwrite(tmp_path):
  out = tmp_path / "m.keras"
  out.write_text("mine")
  with pytest.raises(FileExistsError):
    formats.write(grown_state(), "keras", str(out))
  assert out.read_text() == "mine"


def test_locate_picks_the_last_winner_a_candidate_a_stage_or_the_base(tmp_path):
  model_dir = str(tmp_path)
  winner, loser = grown_state(seed=0), grown_state(seed=1)
  lag_run_dir(model_dir, winner, loser)
  base = grown_state(seed=2)
  save_checkpoint(lag_model(base), model_dir)
  write_json(os.path.join(model_dir, "operative_config.gin.json"), {})  # Ignored noise.
  with open(os.path.join(model_dir, "operative_config.gin"), "w") as f:
    f.write("run_experiment.kind = 'lag'\nTrainer.train_steps = 7\n" + "".join(
        f"TransformerConfig.{k} = {v!r}\n" for k, v in base.config.to_dict().items()))
  assert states_equal(locate.load_state(locate.locate(model_dir)), winner)
  assert states_equal(locate.load_state(locate.locate(model_dir, stage=0)), winner)
  assert states_equal(locate.load_state(locate.locate(model_dir, candidate="loser")), loser)
  assert states_equal(locate.load_state(locate.locate(model_dir, base=True)), base)
  for kwargs, message in [({"stage": 3}, "no committed decision for stage 3"),
                          ({"candidate": "nope"}, "no candidate 'nope'"),
                          ({"base": True, "stage": 0}, "base selects")]:
    with pytest.raises(locate.LocateError, match=message):
      locate.locate(model_dir, **kwargs)


def test_a_train_run_is_configured_by_its_operative_config(tmp_path):
  state = grown_state("decoder", tie=False)
  save_checkpoint(lag_model(state), str(tmp_path))
  (tmp_path / "operative_config.gin").write_text(
      "import lag_tf.models\nNUM_LAYERS = 3\nTransformerConfig.num_layers = %NUM_LAYERS\n" +
      "".join(f"TransformerConfig.{k} = {v!r}\n" for k, v in state.config.to_dict().items()
              if k != "num_layers") + "WarmupDecaySchedule.total_steps = 10\n")
  located = locate.locate(str(tmp_path))
  assert located.config == state.config
  assert states_equal(locate.load_state(located), state)


def _export(args):
  env = dict(os.environ, PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "lag_tf.export"] + args, cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


def _error_line(result):
  """The one `error:` line, last on stderr (TensorFlow may log before it); None otherwise."""
  lines = result.stderr.strip().splitlines()
  errors = [line for line in lines if line.startswith("error: ")]
  return errors[0] if len(errors) == 1 and lines[-1] == errors[0] else None


def test_bad_requests_exit_2_with_one_line(tmp_path):
  existing = tmp_path / "there.keras"
  existing.write_text("mine")
  cases = [([], "--model_dir is required"),
           ([f"--model_dir={tmp_path}"], "--out is required"),
           ([f"--model_dir={tmp_path}", "--out=x.keras", "--format=onnx"], "--format=onnx"),
           ([f"--model_dir={tmp_path}", "--out=x.h5"], "must end in .keras"),
           ([f"--model_dir={tmp_path}", "--out=x.keras", "--stage=one"], "--stage=one"),
           ([f"--model_dir={tmp_path}", f"--out={existing}"], "already exists")]
  for args, message in cases:
    result = _export(args)
    assert result.returncode == 2, (args, result.stderr)
    assert _error_line(result) and message in _error_line(result), result.stderr
  assert existing.read_text() == "mine"


def test_missing_model_exits_2(tmp_path):
  result = _export([f"--model_dir={tmp_path / 'nothing'}", f"--out={tmp_path / 'm.keras'}"])
  assert result.returncode == 2
  assert _error_line(result) == f"error: model dir {tmp_path / 'nothing'} does not exist"


@pytest.mark.parametrize("changes,mismatch", [
    ({"kind": "encoder"}, "post-LayerNorm"),
    ({"activation": "gelu"}, "activation='gelu'"),
    ({"layer_norm_epsilon": 1e-6}, "layer_norm_epsilon=1e-06"),
    ({"head_dim": 4}, "num_heads * head_dim = 16 != d_model = 32")])
def test_keras_hub_names_the_first_mismatch(changes, mismatch):
  config = grown_state().config.replace(kind="decoder", activation="gelu_tanh", d_model=32,
                                        layer_norm_epsilon=1e-5)
  assert keras_hub_io.backbone_for(config) == "GPT2Backbone"
  assert keras_hub_io.backbone_for(config.replace(activation="relu")) == "OPTBackbone"
  with pytest.raises(ValueError, match=re.escape(mismatch)):
    keras_hub_io.backbone_for(config.replace(**changes))


def test_an_unmappable_keras_hub_export_exits_2(tmp_path):
  lag_run_dir(str(tmp_path / "run"), grown_state(), grown_state(seed=1))
  result = _export([f"--model_dir={tmp_path / 'run'}", "--format=keras_hub",
                    f"--out={tmp_path / 'preset'}"])
  assert result.returncode == 2
  assert "post-LayerNorm" in _error_line(result)
  assert not os.path.exists(tmp_path / "preset")
