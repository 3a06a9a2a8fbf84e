"""Which old layer initializes each new layer, for 2 -> 4 and 6 -> 12 (pure, no Keras)."""

import numpy as np
import pytest

from lag_tf.growth import depth
from lag_tf.growth.mapping import unit_map

N = None  # A fresh layer.


@pytest.mark.parametrize("plan,expected_2_to_4,expected_6_to_12", [
    (lambda L, T: depth._stack_plan(L, T),
     [0, 1, 0, 1], [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]),
    (lambda L, T: depth._duplicate_plan(L, T),
     [0, 0, 1, 1], [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]),
    (lambda L, T: depth._copy_top_plan(L, T),
     [0, 1, 0, 1], [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]),
    (lambda L, T: depth._copy_middle_plan(L, T, block_size=1),
     [0, 0, 0, 1], [0, 1, 2, 2, 2, 2, 2, 2, 2, 3, 4, 5]),
    (lambda L, T: depth._copy_middle_plan(L, T, block_size=2),
     [0, 1, 0, 1], [0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 4, 5]),
    (lambda L, T: depth._copy_block_plan(L, T, start=-1, stop=None),
     [0, 1, 1, 1], [0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5]),
    (lambda L, T: depth._copy_block_plan(L, T, start=0, stop=1, insert_at=0),
     [0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5]),
    (lambda L, T: depth._random_plan(L, T, "top"),
     [0, 1, N, N], [0, 1, 2, 3, 4, 5, N, N, N, N, N, N]),
    (lambda L, T: depth._random_plan(L, T, "interleave"),
     [0, N, 1, N], [0, N, 1, N, 2, N, 3, N, 4, N, 5, N]),
    (lambda L, T: depth._random_plan(L, T, "middle"),
     [0, N, N, 1], [0, 1, 2, N, N, N, N, N, N, 3, 4, 5]),
])
def test_depth_plans_for_both_pool_settings(plan, expected_2_to_4, expected_6_to_12):
  assert list(plan(2, 4).sources) == expected_2_to_4
  assert list(plan(6, 12).sources) == expected_6_to_12


def test_new_layers_are_the_non_original_occurrences():
  plan = depth._duplicate_plan(2, 4)
  assert plan.new == (False, True, False, True)
  plan = depth._zero_output_plan(3, 5, position="middle", inner="copy")
  assert plan.sources == (0, 1, 0, 1, 2)  # The lower-middle block [0, 2) of 3 layers.
  assert plan.zero_output == (False, False, True, True, False)
  plan = depth._map_plan(3, [2, 0, 1, -1, None])
  assert plan.sources == (2, 0, 1, 2, None)
  assert plan.new == (True, False, False, False, True)  # Layers 0, 1, 2 in order are originals.


def test_uneven_targets_spread_or_truncate():
  assert list(depth._duplicate_plan(2, 5).sources) == [0, 0, 1, 1, 1]
  assert list(depth._stack_plan(2, 5).sources) == [0, 1, 0, 1, 0]


def test_unit_maps():
  rng = np.random.default_rng(0)
  assert list(unit_map(3, 7, rng, "cycle").index) == [0, 1, 2, 0, 1, 2, 0]
  assert list(unit_map(2, 4, rng, "fresh").index) == [0, 1, -1, -1]
  randomized = unit_map(4, 10, rng, "random")
  counts = np.bincount(randomized.index, minlength=4)
  assert list(randomized.index[:4]) == [0, 1, 2, 3] and sorted(counts) == [2, 2, 3, 3]
  np.testing.assert_array_equal(randomized.counts, counts[randomized.index])
