"""Candidates, pools and their validation; every gin file under gin/growth parses, validates
for the settings it is written for, and its candidates grow a tiny model as declared."""

import importlib.util  # noqa: F401  gin reads files through importlib.util.
import json
import os

import gin
import numpy as np
import pytest

from lag_tf.growth import Candidate, Pool, apply_candidate, target_config, validate_pool
from lag_tf.growth import registry
from lag_tf.models import TransformerConfig, count_parameters
import growth_fixtures

GIN_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gin")
GROWTH_GIN_FILES = sorted(f for f in os.listdir(os.path.join(GIN_DIR, "growth"))
                          if f.endswith(".gin"))
TINY = growth_fixtures.tiny_config()
BERT_6L = TransformerConfig(kind="encoder", num_layers=6, d_model=768, num_heads=12, d_ff=3072,
                            vocab_size=30522, max_len=512)


@gin.configurable("test_growth_pool_holder")
def _pool_holder(pool):
  return pool


def _stack(name="stack", **changes):
  return Candidate(**dict(dict(name=name, depth="stack_layers",
                               depth_params={"target_layers": 4}), **changes))


# -- candidates --------------------------------------------------------------------------------

def test_candidate_takes_names_or_gin_references_and_records_itself():
  gin.parse_config("""
      c/growth.Candidate.name = 'zero_split'
      c/growth.Candidate.depth = @growth.zero_output_layers
      c/growth.Candidate.depth_params = {'target_layers': 4}
      c/growth.Candidate.width = @growth.split_ffn
      c/growth.Candidate.width_params = {'target_d_ff': 128}
      test_growth_pool_holder.pool = @c/growth.Candidate()
  """)
  candidate = _pool_holder()
  assert (candidate.depth, candidate.width) == ("zero_output_layers", "split_ffn")
  assert candidate.function_preserving
  record = json.loads(json.dumps(candidate.to_dict()))
  assert record["depth_params"] == {"target_layers": 4} and record["function_preserving"]
  assert not _stack().function_preserving
  assert _stack() == Candidate("stack", depth="stack_layers", depth_params={"target_layers": 4})


@pytest.mark.parametrize("kwargs,message", [
    (dict(name="a", depth="stack_layer"), "unknown growth operator 'stack_layer'"),
    (dict(name="a", depth="split_ffn"), "split_ffn is a width operator, given as depth"),
    (dict(name="a"), "grows nothing"),
    (dict(name="a", width_params={"target_d_ff": 8}), "width_params given without"),
    (dict(name="a", depth="stack_layers", optimizer_state="keep"), "optimizer_state='keep'"),
    (dict(name="a", depth="stack_layers", noise_scale=-1.0), "noise_scale=-1.0"),
    (dict(name="a/b", depth="stack_layers"), "the name must be"),
])
def test_bad_candidates_fail_validation(kwargs, message):
  with pytest.raises(ValueError, match=message) as error:
    validate_pool(Pool([Candidate(**kwargs)]), TINY)
  assert str(error.value).startswith("growth candidate ") and "\n" not in str(error.value)


# -- pool validation ---------------------------------------------------------------------------

@pytest.fixture
def encoder_only_op():
  """A throwaway operator that declares it fits encoders only (none of the real ones is)."""
  def encoder_only_widening(config, state, rng, *, noise_scale=0.0):
    raise NotImplementedError

  registry.growth_operator("width", function_preserving=False,
                           target_config=lambda config, **_: config.replace(d_ff=128),
                           model_kinds=("encoder",),
                           register_with_gin=False)(encoder_only_widening)
  yield "encoder_only_widening"
  registry.unregister("encoder_only_widening")


@pytest.mark.parametrize("candidates,base,second,message", [
    ([_stack("a"), _stack("a")], TINY, None, "'a': duplicate candidate name"),
    ([_stack("a", depth_params={"target_layers": 1})], TINY, None,
     "'a': stack_layers: target_layers=1 must be an integer larger than num_layers=2"),
    ([_stack("b", depth="layer_map", depth_params={"sources": [0, 1, 5]})], TINY, None,
     "'b': layer_map: layer index 5 out of range for a 2-layer model"),
    ([_stack("c", depth="copy_block", depth_params={"target_layers": 4, "start": 3, "stop": 4})],
     TINY, None, "'c': copy_block: start 3 out of range"),
    ([_stack("d", depth_params={"target_layers": 4, "block_size": 2})], TINY, None,
     "'d': stack_layers: got an unexpected keyword argument 'block_size'"),
    ([_stack("e", depth_params={})], TINY, None, "'e': stack_layers: missing a required"),
    ([_stack("f", depth_params={"target_layers": 4, "noise_scale": 0.1})], TINY, None,
     "'f': stack_layers: 'noise_scale' is set by the candidate"),
    ([Candidate("g", width="widen_d_model", width_params={"target_d_model": 48})], TINY, None,
     "'g': widen_d_model: target_d_model=48 must be a multiple of 32"),
    ([Candidate("h", width="deep_fusion")], TINY, None,
     "'h': deep_fusion needs a second trained model"),
    ([Candidate("i", width="deep_fusion")], TINY, TINY.replace(d_ff=32),
     r"'i': deep_fusion: the second model differs from the base model in \{'d_ff': 32\}"),
    ([Candidate("j", width="deep_fusion")], TINY, TINY.replace(kind="decoder"),
     "'j': deep_fusion: the second model differs .*'kind': 'decoder'"),
    ([_stack("k"), _stack("l", depth_params={"target_layers": 6})], TINY, None,
     "'l': grows to 6 layers, d_model 32, 2 heads of 16, d_ff 64 but 'k' grows to 4 layers"),
])
def test_validate_pool_errors_name_the_candidate(candidates, base, second, message):
  with pytest.raises(ValueError, match=message) as error:
    validate_pool(Pool(candidates, name="p"), base, second_config=second)
  assert "\n" not in str(error.value)


def test_operator_that_does_not_fit_the_model_kind(encoder_only_op):
  pool = Pool([Candidate("enc", width=encoder_only_op)])
  assert validate_pool(pool, TINY)["enc"].d_ff == 128
  with pytest.raises(ValueError, match="'enc': encoder_only_widening fits encoder models, not a "
                     "decoder"):
    validate_pool(pool, TINY.replace(kind="decoder"))


def test_validate_pool_targets_empty_pools_and_lookup():
  pool = Pool([_stack("a"), Candidate("b", width="split_ffn", width_params={"target_d_ff": 128})])
  assert target_config(pool["a"], TINY).num_layers == 4
  assert target_config(pool["b"], TINY).d_ff == 128
  with pytest.raises(ValueError, match="'b': grows to"):
    validate_pool(pool, TINY)
  with pytest.raises(ValueError, match="no candidates"):
    validate_pool(Pool([]), TINY)
  assert pool["b"].width == "split_ffn" and pool.names == ["a", "b"] and len(pool) == 2
  with pytest.raises(KeyError):
    pool["z"]  # pylint: disable=pointless-statement
  with pytest.raises(ValueError, match="is not a Candidate"):
    validate_pool(Pool(["stack"]), TINY)
  assert target_config(_stack(), TINY) == TINY.replace(num_layers=4)


# -- gin files ---------------------------------------------------------------------------------

def _parse(filename, **macros):
  gin.add_config_file_search_path(GIN_DIR)
  bindings = [f"{name} = {value!r}" for name, value in macros.items()]
  bindings.append("test_growth_pool_holder.pool = %GROWTH_POOL")
  gin.parse_config_files_and_bindings([f"growth/{filename}"], bindings)
  return _pool_holder()


def _doubled(config):
  return dict(TARGET_D_MODEL=2 * config.d_model, TARGET_HEADS=2 * config.num_heads,
              TARGET_D_FF=2 * config.d_ff)


# Per gin file: the macros for (base config), and the second model's config if it needs one.
def _settings(filename, base):
  depth = dict(TARGET_LAYERS=2 * base.num_layers)
  return {"depth_pool.gin": (depth, None),
          "width_pool.gin": (_doubled(base), None),
          "full_pool.gin": (dict(depth, **_doubled(base)), None),
          "fusion_pool.gin": (_doubled(base), base)}[filename]


def test_every_growth_gin_file_is_covered():
  assert GROWTH_GIN_FILES == ["depth_pool.gin", "full_pool.gin", "fusion_pool.gin",
                              "width_pool.gin"]


@pytest.mark.parametrize("filename", GROWTH_GIN_FILES)
@pytest.mark.parametrize("base", [TINY, TINY.replace(kind="decoder", tie_embeddings=False),
                                  BERT_6L, BERT_6L.replace(kind="decoder")],
                         ids=["2l_encoder", "2l_decoder_untied", "6l_encoder", "6l_decoder"])
def test_gin_pools_parse_and_validate(filename, base):
  macros, second = _settings(filename, base)
  pool = _parse(filename, **macros)
  assert isinstance(pool, Pool) and len(set(pool.names)) == len(pool)
  if filename == "depth_pool.gin":
    assert len(pool) >= 8
  targets = validate_pool(pool, base, second_config=second)
  target = next(iter(targets.values()))
  assert target.num_layers == macros.get("TARGET_LAYERS", base.num_layers)
  assert target.d_model == macros.get("TARGET_D_MODEL", base.d_model)


def test_gin_pool_without_its_required_macro_fails_clearly():
  gin.add_config_file_search_path(GIN_DIR)
  with pytest.raises(ValueError, match="TARGET_LAYERS/macro.value set to `%gin.REQUIRED`"):
    gin.parse_config_files_and_bindings(["growth/depth_pool.gin"], [])


@pytest.mark.parametrize("filename", GROWTH_GIN_FILES)
def test_every_pool_candidate_grows_a_tiny_model_as_declared(filename):
  base = TINY.replace(kind="decoder")
  macros, second = _settings(filename, base)
  pool = _parse(filename, **macros)
  state = growth_fixtures.randomized_state(base, seed=1, with_moments=True)
  second_state = (growth_fixtures.randomized_state(base, seed=2, with_moments=True) if second
                  else None)
  tokens = growth_fixtures.random_tokens(base)
  before = growth_fixtures.logits(state, tokens)
  for candidate in pool:
    grown = apply_candidate(candidate, state, np.random.default_rng(0), second_state)
    assert grown.params() == count_parameters(grown.config)
    after = growth_fixtures.logits(grown, tokens)
    changed = np.abs(after - before).max()
    if candidate.function_preserving:
      assert changed < 1e-5, candidate.name
    else:
      assert changed > 1e-3, candidate.name
