"""One compiled engine per target shape, shared by a Trainer per candidate (`CandidateTrainers`),
probes a pool exactly as a new Trainer and engine per candidate does: the same per-candidate
eval curves (1e-5) and the same decision, through halving rungs (resume), a diverging
candidate, fused kernels on and off, dropout."""

import os

import numpy as np
import pytest

from lag_tf.data import LanguageModelingData
from lag_tf.growth import Pool, validate_pool
from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import SelectorRule, select
from lag_tf.models import TransformerConfig
from lag_tf.training.trainer import Trainer
from lag_fixtures import (parse_lag_config, register_nan_operator, small_pool, strategy,
                          unregister_nan_operator)


@pytest.fixture
def nan_operator():
  register_nan_operator()
  yield
  unregister_nan_operator()


def _probe_all(probe, names, rungs):
  """Every candidate to each rung in turn, as successive halving without eliminations does."""
  results = {}
  for rung in rungs:
    for name in names:
      results[name], _ = probe(name, rung)
  return results


@pytest.mark.parametrize("bindings, rungs, names", [
    # The diverging candidate first: the next one must not inherit its NaN state.
    ([], (4,), ("poisoned", "stack")),
    # Resumed rungs, and dropout: its seed generators must restart with every candidate.
    (["TransformerConfig.fused_kernels = False", "TransformerConfig.dropout = 0.1"], (2, 4),
     ("stack", "zero_top")),
])
def test_one_engine_per_shape_probes_like_new_trainers(tmp_path, data_dir, nan_operator,
                                                        bindings, rungs, names):
  parse_lag_config(data_dir, ["ProbeSchedule.probe_steps = 4", "Trainer.eval_batches = 2",
                              "ProbeSchedule.eval_steps = (0, 2)"] + bindings)
  data = LanguageModelingData()
  base = Trainer(TransformerConfig(), data, strategy(), str(tmp_path / "base"), train_steps=4)
  base.resume()
  point = GrowthPoint.from_trainer(base)
  candidates = {c.name: c for c in small_pool(with_nan=True).candidates}
  pool = Pool([candidates[n] for n in names])
  targets = validate_pool(pool, point.config)
  assert len(set(targets.values())) == 1
  schedule = ProbeSchedule()

  alone = {}

  def new_trainers(name, rung):
    # A CandidateTrainers (so a Trainer and engine) of its own for every candidate.
    if name not in alone:
      alone[name] = CandidateTrainers(point, data, strategy(), schedule, 4)
    return alone[name].probe(pool[name], targets[name], str(tmp_path / "new" / name), rung)

  trainers = CandidateTrainers(point, data, strategy(), schedule, 4)

  def reused(name, rung):
    return trainers.probe(pool[name], targets[name], str(tmp_path / "reused" / name), rung)

  want = _probe_all(new_trainers, pool.names, rungs)
  got = _probe_all(reused, pool.names, rungs)
  if "poisoned" in names:
    assert want["poisoned"].failed and got["poisoned"].failed
  for name in pool.names:
    assert sorted(got[name].eval_losses) == sorted(want[name].eval_losses)
    assert got[name].steps_trained == want[name].steps_trained
    if name == "poisoned":
      continue
    assert sorted(got[name].eval_losses) == [0, 2, 4]
    np.testing.assert_allclose([got[name].eval_losses[s] for s in (0, 2, 4)],
                               [want[name].eval_losses[s] for s in (0, 2, 4)], rtol=1e-5)
    np.testing.assert_allclose(got[name].eval_batch_losses[4], want[name].eval_batch_losses[4],
                               rtol=1e-5)
  assert select(SelectorRule(), got).winner == select(SelectorRule(), want).winner
  if "zero_top" not in names:
    return
  # The curves differ between candidates (else equal curves would prove nothing).
  assert got["stack"].eval_losses[4] != got["zero_top"].eval_losses[4]
  # One engine served them all, each candidate through a Trainer in its own directory with
  # its own checkpoint and metrics; only the newest Trainer drives the engine.
  first = trainers.trainer(pool["stack"], targets["stack"], str(tmp_path / "reused" / "stack"))
  again = trainers.trainer(pool["zero_top"], targets["zero_top"],
                           str(tmp_path / "reused" / "zero_top"))
  assert first is not again and first.engine is again.engine
  assert again.global_step == point.step + 4 and again.model_dir.endswith("zero_top")
  with pytest.raises(RuntimeError, match="no longer drives its engine"):
    first.train()
  for name in pool.names:
    for file in ("metrics.jsonl", "candidate.json"):
      assert os.path.exists(tmp_path / "reused" / name / file)
