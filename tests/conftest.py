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


# The files that take longest start first: a worker with nothing left steals queued tests from
# the other's end, so the long tests go first and the short ones even out the finish.
SLOW_FIRST = ("test_speedup.py", "test_launch_multi_worker.py", "test_probe_reuse.py",
              "test_resume.py", "test_interop_readme.py", "test_lag.py", "test_training.py",
              "test_race.py", "test_benchmark_commands.py", "test_gradual.py", "test_plan.py")


def pytest_collection_modifyitems(items):
  first = {name: index for index, name in enumerate(SLOW_FIRST)}
  items.sort(key=lambda item: first.get(item.path.name, len(first)))  # Stable: the rest keep
  # their order.


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
