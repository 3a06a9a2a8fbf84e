"""LAG end to end (CI-sized): probe, commit, continue; failures isolated; restarts never
re-probe; successive halving probes less; grow-once writes growth.json."""

import json
import os

import pytest

from lag_tf.analysis import report
from lag_tf.experiments.grow import grow_experiment
from lag_tf.experiments.registry import lag_experiment
from lag_tf.model_dir_store import read_decision
from lag_tf.lag.schedule import ProbeSchedule
from lag_tf.lag.selector import SelectorRule
from lag_tf.model_dir_store import read_metrics
from lag_fixtures import (BASE_STEPS, parse_lag_config, register_nan_operator, small_pool,
                          strategy, unregister_nan_operator)


@pytest.fixture
def nan_operator():
  register_nan_operator()
  yield
  unregister_nan_operator()


def _metrics(model_dir, name=None):
  path = os.path.join(model_dir, "candidates", name) if name else model_dir
  return read_metrics(os.path.join(path, "metrics.jsonl"))


def test_probe_commit_continue_and_restart(tmp_path, data_dir, nan_operator):
  parse_lag_config(data_dir)
  model_dir = str(tmp_path)
  result = lag_experiment(strategy(), model_dir, pool=small_pool(with_nan=True),
                          base_steps=BASE_STEPS, continue_steps=4)
  record = read_decision(model_dir, 0)
  assert record.winner == result["winner"] != "poisoned"
  assert record.candidates["poisoned"].status == "failed"
  assert "nan" in record.candidates["poisoned"].failed.lower()
  assert record.ranking[-1] == "poisoned"
  assert record.rule == "lag" and record.probe_steps == 6
  assert record.eval_steps == [0, 2, 4, 6]
  ok = [n for n, c in record.candidates.items() if c.status == "ok"]
  assert sorted(ok) == ["random_top", "stack", "zero_top"]
  for name in ok:
    assert sorted(record.candidates[name].eval_losses) == [0, 2, 4, 6]

  # All candidates grow from the same base point: the function-preserving one starts exactly at
  # the base model's eval loss, on the same eval batches.
  base_records = _metrics(model_dir)
  base_eval = [r for r in base_records if r.step == BASE_STEPS][0].eval_loss
  assert record.candidates["zero_top"].eval_losses[0] == pytest.approx(base_eval, abs=1e-5)
  assert record.candidates["stack"].eval_losses[0] != pytest.approx(base_eval, abs=1e-5)
  # Same data stream: every candidate consumed the same examples, from the same position.
  for name in ok:
    at_probe_end = [r for r in _metrics(model_dir, name) if r.step == BASE_STEPS + 6][0]
    assert at_probe_end.examples_seen == (BASE_STEPS + 6) * 8, name
  # The winner continued from its own probe checkpoint to base + probe + continue steps.
  assert result["steps"] == BASE_STEPS + 6 + 4
  winner_steps = [r.step for r in _metrics(model_dir, result["winner"])]
  assert winner_steps == sorted(set(winner_steps)) and winner_steps[-1] == BASE_STEPS + 10
  assert "winner" in (tmp_path / "summary.md").read_text()
  assert record.probe_cost_flops > 0 and record.probe_cost_steps == 3 * 6 + 2

  # A restart finds the committed decision: it neither probes again nor rewrites it.
  decision_text = (tmp_path / "decisions" / "stage-0.json").read_text()
  loser = [n for n in ok if n != result["winner"]][0]
  loser_metrics = (tmp_path / "candidates" / loser / "metrics.jsonl").read_text()
  again = lag_experiment(strategy(), model_dir, pool=small_pool(with_nan=True),
                         base_steps=BASE_STEPS, continue_steps=4)
  assert again["winner"] == result["winner"]
  assert (tmp_path / "decisions" / "stage-0.json").read_text() == decision_text
  assert (tmp_path / "candidates" / loser / "metrics.jsonl").read_text() == loser_metrics


def test_half_finished_probe_resumes_from_candidate_checkpoints(tmp_path, data_dir):
  parse_lag_config(data_dir, ["ProbeSchedule.probe_steps = 4", "ProbeSchedule.eval_steps = (0, 2)"])
  model_dir = str(tmp_path)
  pool = small_pool()
  # First job: dies after 'stack' probed (simulated by probing it alone).
  from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
  from lag_tf.data import LanguageModelingData
  from lag_tf.growth import validate_pool
  from lag_tf.models import TransformerConfig
  from lag_tf.training.trainer import Trainer
  base = Trainer(TransformerConfig(), LanguageModelingData(), strategy(), model_dir,
                 train_steps=BASE_STEPS)
  base.train()
  point = GrowthPoint.from_trainer(base)
  targets = validate_pool(pool, TransformerConfig())
  CandidateTrainers(point, LanguageModelingData(), strategy(), ProbeSchedule(), 4).probe(
      pool["stack"], targets["stack"], os.path.join(model_dir, "candidates", "stack"), 4)
  before = (tmp_path / "candidates" / "stack" / "metrics.jsonl").read_text()
  lag_experiment(strategy(), model_dir, pool=pool, base_steps=BASE_STEPS, continue_steps=0)
  # 'stack' was not probed again: its metrics are untouched (unless it won and continued: it
  # cannot continue past the probe with continue_steps=0).
  assert (tmp_path / "candidates" / "stack" / "metrics.jsonl").read_text() == before
  assert read_decision(model_dir, 0) is not None


def test_successive_halving_probes_fewer_steps(tmp_path, data_dir):
  parse_lag_config(data_dir)
  model_dir = str(tmp_path)
  lag_experiment(strategy(), model_dir, pool=small_pool(), base_steps=BASE_STEPS,
                 rule=SelectorRule(rule="successive_halving", halving_eta=2))
  record = read_decision(model_dir, 0)
  trained = {n: c.probe_steps_trained for n, c in record.candidates.items()}
  # 3 candidates, eta 2: all to 3 steps, the best 2 to 6.
  assert sorted(trained.values()) == [3, 6, 6]
  eliminated = [n for n, c in record.candidates.items() if c.status == "eliminated"]
  assert len(eliminated) == 1 and record.winner not in eliminated
  assert record.probe_cost_steps == 15 < 3 * 6


def test_invalid_pool_fails_before_training(tmp_path, data_dir):
  parse_lag_config(data_dir)
  from lag_tf.growth import Candidate, Pool
  pool = Pool([Candidate("too_shallow", depth="stack_layers", depth_params={"target_layers": 1})])
  with pytest.raises(ValueError, match="too_shallow"):
    lag_experiment(strategy(), str(tmp_path), pool=pool, base_steps=BASE_STEPS)
  assert not os.path.exists(tmp_path / "metrics.jsonl")


@pytest.mark.parametrize("candidate, preserving", [("zero_top", True), ("stack", False)])
def test_grow_once_writes_growth_json(tmp_path, data_dir, candidate, preserving):
  parse_lag_config(data_dir)
  grow_experiment(strategy(), str(tmp_path), pool=small_pool(), candidate=candidate,
                  base_steps=BASE_STEPS)
  growth = json.loads((tmp_path / "growth.json").read_text())
  assert growth["candidate"] == candidate and growth["function_preserving"] == preserving
  assert growth["params_after"] > growth["params_before"]
  assert (growth["grown_eval_loss"] == pytest.approx(growth["base_eval_loss"], abs=1e-5)) == \
      preserving
  assert os.path.exists(tmp_path / "grown" / "ckpt" / "checkpoint")


def test_candidates_see_the_identical_data_stream(tmp_path, data_dir):
  import hashlib
  from lag_tf.data import LanguageModelingData
  from lag_tf.growth import validate_pool
  from lag_tf.lag.probe import CandidateTrainers, GrowthPoint
  from lag_tf.models import TransformerConfig
  from lag_tf.training.trainer import Trainer
  parse_lag_config(data_dir)
  data = LanguageModelingData()
  base = Trainer(TransformerConfig(), data, strategy(), str(tmp_path / "base"), train_steps=4)
  base.train()
  point = GrowthPoint.from_trainer(base)
  pool = small_pool()
  targets = validate_pool(pool, point.config)
  digests = {}
  for name in pool.names:
    trainer = CandidateTrainers(point, data, strategy(), ProbeSchedule(), 6).trainer(
        pool[name], targets[name], str(tmp_path / name))
    iterator = trainer.engine.train_iterator()
    digest = hashlib.sha256()
    for _ in range(3):
      batch = next(iterator)
      for key in ("inputs", "targets", "weights"):
        digest.update(batch[key].numpy().tobytes())
    digests[name] = digest.hexdigest()
  assert len(set(digests.values())) == 1, digests
  # And it continues the base model's stream rather than restarting it.
  assert int(point.examples_seen) == 4 * 8


def test_scratch_baseline_spends_the_runs_flops_and_is_compared_in_the_summary(tmp_path,
                                                                               data_dir):
  # Role scopes (gin/runs/common.gin): a scoped binding reaches that role's models only;
  # unscoped bindings (the fixture's Trainer.eval_batches = 4, the quickstart's peak learning
  # rate 4e-3) apply wherever no scoped one overrides them.
  parse_lag_config(data_dir, ["base/Trainer.eval_batches = 3",
                              "scratch/WarmupDecaySchedule.peak_learning_rate = 1e-3"])
  model_dir = str(tmp_path)
  result = lag_experiment(strategy(), model_dir, pool=small_pool(), base_steps=BASE_STEPS,
                          continue_steps=4, scratch_baseline=True)
  def logged(field, *path):
    values = [getattr(r, field) for r in read_metrics(os.path.join(model_dir, *path,
                                                                   "metrics.jsonl"))]
    return [v for v in values if v is not None]
  assert {len(losses) for losses in logged("eval_batch_losses")} == {3}
  assert {len(losses) for losses in logged("eval_batch_losses", "scratch")} == {4}
  assert max(logged("learning_rate", "scratch")) == pytest.approx(1e-3)  # float32
  assert max(logged("learning_rate")) == pytest.approx(4e-3)
  scratch = read_metrics(os.path.join(model_dir, "scratch", "metrics.jsonl"))
  steps = max(r.step for r in scratch)
  # The grown config from scratch for the whole run's FLOPs: base (2 layers) + 3 probes + the
  # evaluations the decision read + the continuation, in 4-layer steps; more than the winner's
  # own 4-layer steps after growth.
  flops = result["flops"]
  assert flops["decision evals"] > 0
  assert flops["total"] == pytest.approx(sum(v for k, v in flops.items() if k != "total"))
  assert result["flops"]["total"] > 0 and steps > 6 + 4
  assert result["scratch_eval_loss"] == pytest.approx(scratch[-1].eval_loss)
  summary = open(os.path.join(model_dir, "summary.md")).read()
  assert f"scratch baseline at equal FLOPs ({steps} steps" in summary
  assert any(verdict in summary for verdict in ("growing beat scratch", "scratch beat growing",
                                                "within noise ("))
  # `python -m lag_tf.analyze` on the run: its report ends on the same answer.
  headline = report.build_report(model_dir)
  text = open(headline["report"]).read().rstrip().splitlines()
  comparison = next(line for line in summary.splitlines() if line.startswith("scratch baseline"))
  assert text[-1] == comparison
  assert text[-3] == (f"Winner `{result['winner']}` continued to step {result['steps']}: final "
                      f"eval loss **{result['final_eval_loss']:.4f}** "
                      f"(candidates/{result['winner']}).")
  assert headline["answer"]["scratch_eval_loss"] == pytest.approx(result["scratch_eval_loss"])
  assert f"eval loss {result['final_eval_loss']:.4f}; scratch at equal FLOPs" in (
      report.format_headline(headline))
