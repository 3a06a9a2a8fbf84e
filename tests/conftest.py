"""Shared test set-up: quiet TensorFlow, a clean gin config around every test, and one tfds
data dir with the small embedded corpus prepared once per session."""

import importlib.util  # noqa: F401  gin reads files through importlib.util.
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gin  # noqa: E402
import pytest  # noqa: E402

if os.environ.get("PYTEST_XDIST_WORKER"):
  # Two workers on two cores: one TensorFlow thread each, or their thread pools fight over
  # the cores (tiny models gain nothing from a second thread). Child processes the tests
  # start keep TensorFlow's defaults.
  import tensorflow as tf  # noqa: E402
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)

SMALL_CORPUS = "python_stdlib_corpus/small"


@pytest.fixture(autouse=True)
def clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """A tfds data dir with the small embedded corpus prepared (once per session)."""
  from lag_tf import data
  directory = str(tmp_path_factory.mktemp("tfds"))
  data.load_or_prepare(SMALL_CORPUS, directory)
  return directory
