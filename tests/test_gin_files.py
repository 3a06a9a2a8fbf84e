"""Every shipped gin file parses; experiments and model sizes build their configs."""

import glob
import os

import gin
import pytest

from lag_tf import config_io
from lag_tf import configurables  # noqa: F401  Registers every configurable.
from lag_tf.models import TransformerConfig, count_parameters

GIN_DIR = config_io.GIN_DIR
ALL_FILES = sorted(os.path.relpath(p, GIN_DIR)
                   for p in glob.glob(os.path.join(GIN_DIR, "**", "*.gin"), recursive=True))
EXPERIMENTS = [f for f in ALL_FILES if f.startswith("experiments/")]
MODEL_SIZES = [f for f in ALL_FILES if f.startswith("models/") and "_" in os.path.basename(f)]


def test_there_are_gin_files():
  assert len(ALL_FILES) >= 15 and EXPERIMENTS and len(MODEL_SIZES) == 11


@pytest.mark.parametrize("path", ALL_FILES)
def test_every_gin_file_parses(path):
  gin.add_config_file_search_path(GIN_DIR)
  gin.parse_config_file(os.path.join(GIN_DIR, path))


@pytest.mark.parametrize("path", EXPERIMENTS)
def test_experiments_finalize(path):
  # Accelerator experiments name real corpora whose DATA_DIR is required: give a stand-in.
  config_io.parse([f"experiments/{os.path.basename(path)}"], ["DATA_DIR = '/nonexistent'"])


@pytest.mark.parametrize("path", MODEL_SIZES)
def test_model_sizes_build_configs(path):
  config_io.parse([path, "data/stdlib_corpus.gin"], [])
  config = TransformerConfig()
  assert config.vocab_size == 260 and config.max_len == 128
  assert config.kind == os.path.basename(path).split("_")[0]
  if os.path.basename(path) == "encoder_base.gin":
    # BERT-base's 12 x 768 body with our byte vocabulary: ~85M parameters.
    assert 84e6 < count_parameters(config) < 87e6


def test_required_macro_left_unset_is_a_clear_error():
  with pytest.raises(config_io.ConfigError, match="NUM_LAYERS"):
    config_io.parse(["models/encoder.gin", "data/stdlib_corpus.gin"],
                    ["D_MODEL = 8", "NUM_HEADS = 2", "D_FF = 8"])
