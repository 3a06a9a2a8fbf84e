"""Keras 3 Transformers: encoder (masked LM) and decoder (causal LM)."""
from lag_tf.models.config import TransformerConfig
from lag_tf.models.transformer import Transformer, TransformerBlock, build_transformer, count_parameters
