r"""Exports a model of a lag_tf model dir as a `.keras` file, a TF SavedModel or a keras-hub model.

  python -m lag_tf.export --model_dir=/tmp/lag_quickstart --format=keras --out=/tmp/winner.keras

Picks the run's final model by default: the winner of the last committed decision, else the
grown model of a `grow` run, else the model dir's own model (a `train` run). `--candidate NAME`
picks a candidate (of `--stage i` if given), `--stage i` alone that stage's winner, `--base` the
model dir's own checkpoint (the base model of a grow/lag/study run). Formats (docs/usage.md "Export
and import"): `keras` (load with `keras.saving.load_model` after `import lag_tf.interop`),
`saved_model` (signature `serving_default`: token_ids -> logits), `keras_hub` (a keras-hub
preset directory, where the architecture maps exactly).

Exit codes: 0 written; 2 bad input (flags, a missing model, an existing --out, an architecture
keras-hub has no exact match for), as one `error:` line on stderr. An existing --out is never
overwritten.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from lag_tf.console import fail  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "The lag_tf model dir to export from.")
flags.DEFINE_string("candidate", None, "Export this candidate instead of the final model.")
flags.DEFINE_string("stage", None, "Export the winner (or --candidate) of this stage.")
flags.DEFINE_bool("base", False, "Export the model dir's own checkpoint (the base model).")
flags.DEFINE_string("format", "keras", "keras | saved_model | keras_hub")
flags.DEFINE_string("out", None, "Output path (.keras file, or a directory); must not exist.")

FORMATS = ("keras", "saved_model", "keras_hub")


def _stage():
  if FLAGS.stage is None:
    return None
  try:
    stage = int(FLAGS.stage)
  except ValueError:
    stage = -1
  if stage < 0:
    fail(f"--stage={FLAGS.stage}: expected a stage number >= 0")
  return stage


def _exists(path: str) -> bool:
  if "://" not in path:  # Local paths: answer without importing TensorFlow.
    return os.path.lexists(path)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.gfile.exists(path)


def main(argv) -> None:
  if len(argv) > 1:
    fail(f"unexpected arguments {argv[1:]}")
  if not FLAGS.model_dir:
    fail("--model_dir is required")
  if not FLAGS.out:
    fail("--out is required")
  if FLAGS.format not in FORMATS:
    fail(f"--format={FLAGS.format}: expected one of {', '.join(FORMATS)}")
  if FLAGS.format == "keras" and not FLAGS.out.endswith(".keras"):
    fail(f"--out={FLAGS.out}: a Keras file must end in .keras")
  stage = _stage()
  if "://" not in FLAGS.model_dir and not os.path.isdir(FLAGS.model_dir):
    fail(f"model dir {FLAGS.model_dir} does not exist")
  if _exists(FLAGS.out):
    fail(f"--out={FLAGS.out} already exists; not overwriting it")

  from lag_tf.interop import formats, locate  # pylint: disable=g-import-not-at-top
  # Reading a run's TransformerConfig from its operative config binds it among all of lag_tf's
  # configurables, as the run did.
  from lag_tf import configurables  # noqa: F401  pylint: disable=g-import-not-at-top
  try:
    located = locate.locate(FLAGS.model_dir, FLAGS.candidate, stage, FLAGS.base)
    formats.check_exportable(located.config, FLAGS.format)
    state = locate.load_state(located)
    formats.write(state, FLAGS.format, FLAGS.out)
  except (ValueError, ImportError, OSError) as error:
    fail(str(error))
  print(f"exported {located.description} ({located.config.kind}, {located.config.num_layers} "
        f"layers x d_model {located.config.d_model}) from {located.checkpoint} to {FLAGS.out} "
        f"({FLAGS.format})", flush=True)


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
