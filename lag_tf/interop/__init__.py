"""Interoperability: lag_tf models out to `.keras` / SavedModel / keras-hub, and back in.

Importing this package registers lag_tf's model class with Keras, so that
`keras.saving.load_model` opens the `.keras` files `python -m lag_tf.export` writes.
"""

from lag_tf.interop.keras_export import ExportedTransformer  # noqa: F401
