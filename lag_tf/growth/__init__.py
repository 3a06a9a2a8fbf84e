"""Growth: numpy weight trees (`ModelState`), pure growth operators, candidates and pools.

Importing this package registers every operator (with gin too, module 'lag_tf.growth'). It does
not touch Keras models: the adapters between them and `ModelState` (`state_from_model`,
`assign_state`) live with training, in lag_tf/training/keras_io.py.
"""

from lag_tf.growth.candidates import (OPTIMIZER_STATE_POLICIES, Candidate, Pool, apply_candidate,
                                      pool_targets, target_config, validate_pool)
from lag_tf.growth.depth import (LayerPlan, copy_block, copy_middle_block, copy_top_layers,
                                 duplicate_layers, layer_map, random_layers, stack_layers,
                                 zero_output_layers)
from lag_tf.growth.fusion import deep_fusion
from lag_tf.growth.registry import GrowthOperator, get_operator, operators
from lag_tf.growth.state import ModelState, tree_items, tree_map, weight_shapes
from lag_tf.growth.width import (bert2bert_aki, random_pad, split_ffn, split_heads,
                                 widen_d_model, zero_pad)
