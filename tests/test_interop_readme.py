"""docs/usage.md "Export and import" runs as written: its commands and Python, with /tmp/ moved
into a temp dir, on tiny model dirs in lag_tf's layout (and, with keras-hub, a real tiny LAG
run). README's "Take the model elsewhere" shows the same first two blocks."""

import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest

from doc_fixtures import README, USAGE, code_blocks, read, section
from interop_fixtures import grown_state, lag_model, lag_run_dir
from lag_tf.interop import locate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _blocks():
  return code_blocks(section(read(USAGE), "Export and import"), "")


def test_the_readme_export_is_the_one_run_here():
  readme = code_blocks(section(read(README), "Take the model elsewhere"), "")
  assert readme == _blocks()[:2]


def _run(args, tmp_path, timeout=600):
  env = dict(os.environ, PYTHONPATH=REPO)
  result = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)
  assert result.returncode == 0, (args, result.stderr[-3000:])
  return result


def _commands(block, tmp_path):
  commands = [line.replace("/tmp/", f"{tmp_path}/") for line in block.splitlines()]
  assert all(c.startswith("python -m lag_tf.") for c in commands), commands
  return [[sys.executable] + shlex.split(c)[1:] for c in commands]


def test_export_then_load_and_fine_tune_in_a_fresh_process(tmp_path):
  exports, python = _blocks()[:2]
  assert "keras.saving.load_model" in python
  winner = grown_state("decoder", tie=True)  # lag_quickstart.gin grows a decoder.
  lag_run_dir(str(tmp_path / "lag_quickstart"), winner, grown_state(seed=1))
  for command in _commands(exports, tmp_path):
    _run(command, tmp_path)
  # The documented Python, then the fresh process's logits of both files for the same tokens.
  check = (python.replace("/tmp/", f"{tmp_path}/") + "\n" +
           f"np.save({str(tmp_path / 'tokens.npy')!r}, tokens)\n"
           f"np.save({str(tmp_path / 'served.npy')!r}, "
           "serve(token_ids=tf.constant(tokens))['logits'].numpy())\n"
           f"np.save({str(tmp_path / 'loaded.npy')!r}, np.asarray(keras.saving.load_model("
           f"{str(tmp_path / 'lag_quickstart_winner.keras')!r})(tokens)))\n")
  output = _run([sys.executable, "-c", check], tmp_path).stdout
  assert re.search(r"fine-tuning loss \d+\.\d+", output), output
  tokens = np.load(tmp_path / "tokens.npy")
  expected = np.asarray(lag_model(winner)(tokens))
  np.testing.assert_allclose(np.load(tmp_path / "served.npy"), expected, atol=1e-4)
  np.testing.assert_allclose(np.load(tmp_path / "loaded.npy"), expected, atol=1e-4)


# A CI-sized run of the shipped gin file, and the documented preset at the same small sizes.
SMALL_PRESET = {"hidden_dim=128": "hidden_dim=32", "intermediate_dim=512": "intermediate_dim=64",
                "max_sequence_length=64": "max_sequence_length=32"}
SMALL_RUN = [
    "include 'data/stdlib_corpus_small.gin'", "D_MODEL = 32", "D_FF = 64", "SEQUENCE_LENGTH = 32",
    "Trainer.global_batch_size = 4", "Trainer.steps_per_loop = 2", "Trainer.eval_every = 10",
    "Trainer.eval_batches = 2", "Trainer.checkpoint_every = 10",
    "ProbeSchedule.probe_steps = 4", "ProbeSchedule.eval_steps = (0, 2, 4)",
    "ProbeSchedule.rewarmup_steps = 2", "lag_experiment.continue_steps = 2",
    # Fixed-k probing: a 2-step continuation leaves a race no probe budget for one look.
    "SelectorRule.rule = 'lag'", "SelectorRule.probe_budget_share = 0.0",
    "depth_pool/growth.Pool.candidates = [@stack/growth.Candidate(), "
    "@zero_top/growth.Candidate()]",
]


def test_grow_a_keras_hub_gpt2_with_lag_and_export_it_back(tmp_path, data_dir, capsys,
                                                          monkeypatch):
  """The preset's Python and the LAG run in this process (keras-hub and TensorFlow imported
  once); the export as a child process, as documented."""
  import keras_hub
  from main_fixtures import run_main_in_process
  make_preset, commands = _blocks()[2:4]
  for size, small in SMALL_PRESET.items():
    assert make_preset.count(size) == 1, size
    make_preset = make_preset.replace(size, small)
  exec(make_preset.replace("/tmp/", f"{tmp_path}/"), {})  # pylint: disable=exec-used
  train, export = _commands(commands, tmp_path)
  assert train[1:3] == ["-m", "lag_tf.main"], train
  # The gin file's own source is /tmp/gpt2_tiny: moved like the documented paths.
  moved = [f"DATA_DIR = '{data_dir}'", f"base_model.source = '{tmp_path}/gpt2_tiny'"]
  bindings = [f"--gin_bindings={b}" for b in SMALL_RUN + moved]
  code, _, err = run_main_in_process(train[3:] + bindings, capsys, monkeypatch)
  assert code == 0, err[-3000:]
  _run(export, tmp_path)
  backbone = keras_hub.models.Backbone.from_preset(str(tmp_path / "lag_gpt2_winner"))
  assert type(backbone).__name__ == "GPT2Backbone" and backbone.num_layers == 4
  winner = locate.load_state(locate.locate(str(tmp_path / "lag_gpt2")))
  tokens = np.random.default_rng(0).integers(0, 260, (2, 32)).astype(np.int32)
  logits = np.asarray(keras_hub.models.GPT2CausalLM(backbone=backbone)(
      {"token_ids": tokens, "padding_mask": np.ones_like(tokens)}))
  bias = np.load(tmp_path / "lag_gpt2_winner" / "lm_head.npz")["output_bias"]
  np.testing.assert_allclose(logits + bias, np.asarray(lag_model(winner)(tokens)), atol=1e-4)


def test_the_documented_preset_has_the_sizes_of_lag_from_gpt2_gin():
  import gin
  from lag_tf import config_io
  from lag_tf import configurables  # noqa: F401  Registers every configurable.
  from lag_tf.interop import keras_hub_io
  from lag_tf.models import TransformerConfig
  make_preset = _blocks()[2]
  sizes = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)[,)]", make_preset)}
  config_io.parse(["experiments/lag_from_gpt2.gin"], [])
  with gin.unlock_config():
    config = TransformerConfig()
  assert keras_hub_io.backbone_for(config) == "GPT2Backbone"
  assert sizes == {"vocabulary_size": config.vocab_size, "num_layers": config.num_layers,
                   "num_heads": config.num_heads, "hidden_dim": config.d_model,
                   "intermediate_dim": config.d_ff, "max_sequence_length": config.max_len}
