"""The distributed loop: loss falls, resume is exact, strategies agree, schedules, errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from lag_tf.model_dir_store import read_metrics
from lag_tf.training.schedules import WarmupDecaySchedule
from lag_tf.training.strategy import make_strategy
from growth_fixtures import states_equal
from trainer_fixtures import tiny_config, tiny_trainer

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def test_short_run_lowers_eval_loss_and_writes_everything(tmp_path, data_dir):
  trainer = tiny_trainer(tmp_path, data_dir, train_steps=40)
  trainer.restore()
  final = trainer.train()
  records = read_metrics(str(tmp_path / "metrics.jsonl"))
  assert [r.step for r in records] == [0, 5, 10, 15, 20, 25, 30, 35, 40]
  first, last = records[0].eval_loss, records[-1].eval_loss
  assert last < 0.8 * first, (first, last)
  assert final.eval_loss == last
  assert len(final.eval_batch_losses) == 4
  assert all(r.loss is not None for r in records[1:]) and all(
      r.tokens_per_second is not None for r in records[2:])
  assert os.path.exists(tmp_path / "ckpt" / "checkpoint")
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path))
  assert trainer.examples_seen == 40 * 8 and trainer.global_step == 40


def test_state_enters_and_leaves_as_a_model_state(tmp_path, data_dir):
  trained = tiny_trainer(tmp_path / "trained", data_dir)
  trained.train(until_step=5)
  fresh = tiny_trainer(tmp_path / "fresh", data_dir)
  fresh.load_state(trained.model_state())
  # Weights, moments, optimizer step.
  assert states_equal(fresh.model_state(), trained.model_state())
  assert (fresh.global_step, fresh.examples_seen) == (0, 0)  # Counters move with start_from.
  assert fresh.evaluate() == trained.evaluate()
  fresh.start_from(trained.model_state(), trained.global_step, trained.examples_seen)
  assert (fresh.global_step, fresh.examples_seen) == (5, 5 * 8)


@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_evaluate_equals_the_loss_of_each_held_out_batch(tmp_path, data_dir, kind):
  # evaluate() runs all batches in one compiled loop; here each batch goes through the loss
  # eagerly, one by one, straight from the data's eval split.
  trainer = tiny_trainer(tmp_path, data_dir, config=tiny_config(kind))
  trainer.train(until_step=5)
  result = trainer.evaluate()
  engine = trainer.engine
  sums = [[float(x) for x in engine.loss_fn(engine.model, batch, False)]
          for batch in trainer.data.eval_dataset(None, 8, 4, trainer.model_config.objective)]
  assert len(sums) == 4
  np.testing.assert_allclose(result.eval_batch_losses, [l / w for l, w, _ in sums],
                             rtol=1e-5)
  weight = sum(w for _, w, _ in sums)
  assert result.eval_loss == pytest.approx(sum(l for l, _, _ in sums) / weight, rel=1e-5)
  assert result.eval_accuracy == pytest.approx(sum(c for _, _, c in sums) / weight,
                                                  rel=1e-5)
  assert trainer.evaluate() == result  # The stacked batches are read once and reused.


def test_resumed_run_matches_the_uninterrupted_run(tmp_path, data_dir):
  straight = tiny_trainer(tmp_path / "straight", data_dir, train_steps=30)
  straight.train()
  first_half = tiny_trainer(tmp_path / "resumed", data_dir, train_steps=30)
  first_half.train(until_step=20)
  # A new process would build a new trainer: do the same.
  resumed = tiny_trainer(tmp_path / "resumed", data_dir, train_steps=30)
  assert resumed.restore() == 20
  assert resumed.examples_seen == 20 * 8
  resumed.train()
  expected = read_metrics(str(tmp_path / "straight" / "metrics.jsonl"))
  actual = read_metrics(str(tmp_path / "resumed" / "metrics.jsonl"))
  assert [r.step for r in actual] == [r.step for r in expected]
  for want, got in zip(expected, actual):
    for key, wanted, value in (("loss", want.loss, got.loss),
                               ("eval_loss", want.eval_loss, got.eval_loss)):
      if wanted is not None:
        assert value == pytest.approx(wanted, abs=1e-6), (want.step, key)


def test_restore_drops_metrics_written_after_the_checkpoint(tmp_path, data_dir):
  trainer = tiny_trainer(tmp_path, data_dir, train_steps=20, checkpoint_every=10)
  trainer.train(until_step=15)  # Checkpoints at 10 and 15 (the end).
  metrics_path = str(tmp_path / "metrics.jsonl")
  with open(metrics_path, "a") as f:  # As if the process died after logging step 20.
    f.write(json.dumps({"step": 20, "loss": 1.0}) + "\n")
  again = tiny_trainer(tmp_path, data_dir, train_steps=20, checkpoint_every=10)
  assert again.restore() == 15
  assert max(r.step for r in read_metrics(metrics_path)) == 15


def test_mirrored_on_two_cpus_matches_the_default_strategy(tmp_path, data_dir):
  """Both model kinds in one 2-CPU child process (its start, TensorFlow's import and the
  device split are paid once)."""
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([TESTS_DIR, os.path.dirname(TESTS_DIR)]))
  output = subprocess.run(
      [sys.executable, os.path.join(TESTS_DIR, "strategy_equivalence_main.py"), str(tmp_path),
       data_dir, "encoder,decoder"], env=env, capture_output=True, text=True, timeout=300)
  assert output.returncode == 0, output.stderr[-3000:]
  streams = json.loads(output.stdout.strip().splitlines()[-1])
  assert sorted(streams) == ["decoder", "encoder"]
  for kind, by_strategy in streams.items():
    default, mirrored = by_strategy["default"], by_strategy["mirrored"]
    assert [r["step"] for r in default] == [r["step"] for r in mirrored]
    compared = 0
    for a, b in zip(default, mirrored):
      for key in ("loss", "eval_loss"):
        if key in a:
          assert b[key] == pytest.approx(a[key], abs=1e-4), (kind, a["step"], key)
          compared += 1
    assert compared >= 6, kind


def test_explicit_eval_steps_stop_the_loop_there(tmp_path, data_dir):
  trainer = tiny_trainer(tmp_path, data_dir, train_steps=12, eval_every=0, eval_steps=[1, 3, 7])
  trainer.train()
  records = read_metrics(str(tmp_path / "metrics.jsonl"))
  assert [r.step for r in records if r.eval_loss is not None] == [0, 1, 3, 7, 12]


def test_xla_step_matches_the_plain_step(tmp_path, data_dir):
  plain = tiny_trainer(tmp_path / "plain", data_dir, train_steps=10, jit_compile=False)
  xla = tiny_trainer(tmp_path / "xla", data_dir, train_steps=10, jit_compile=True)
  assert plain.train().eval_loss == pytest.approx(xla.train().eval_loss, abs=2e-3)


def test_schedule_warmup_then_decay():
  schedule = WarmupDecaySchedule(1.0, warmup_steps=10, total_steps=110, decay="linear")
  values = [float(schedule(step)) for step in (0, 9, 10, 60, 110, 200)]
  assert values[0] == pytest.approx(0.1) and values[1] == pytest.approx(1.0)
  assert values[3] == pytest.approx(0.5) and values[4] == pytest.approx(0.0)
  assert values[5] == pytest.approx(0.0)
  cosine = WarmupDecaySchedule(1.0, warmup_steps=0, total_steps=100, decay="cosine",
                               end_fraction=0.1)
  assert float(cosine(50)) == pytest.approx(0.1 + 0.9 * 0.5)
  shifted = WarmupDecaySchedule(1.0, warmup_steps=10, total_steps=110, start_step=100)
  assert float(shifted(109)) == pytest.approx(1.0) and float(shifted(100)) == pytest.approx(0.1)
  # Warmup-stable-decay: the peak until the last 20%, then linear to 10% of the peak.
  wsd = WarmupDecaySchedule(1.0, warmup_steps=10, total_steps=100, decay="wsd", end_fraction=0.1)
  values = [float(wsd(step)) for step in (9, 50, 80, 90, 100)]
  assert values == pytest.approx([1.0, 1.0, 1.0, 0.55, 0.1])
  with pytest.raises(ValueError, match="decay"):
    WarmupDecaySchedule(decay="step")
  with pytest.raises(ValueError, match="cooldown_fraction"):
    WarmupDecaySchedule(decay="wsd", cooldown_fraction=0.0)


def test_trainer_rejects_bad_settings(tmp_path, data_dir):
  with pytest.raises(ValueError, match="not a multiple of Trainer.steps_per_loop"):
    tiny_trainer(tmp_path, data_dir, eval_every=7)
  with pytest.raises(ValueError, match="vocab_size"):
    tiny_trainer(tmp_path, data_dir, config=tiny_config(vocab_size=100))


def test_strategy_factory():
  assert make_strategy("default") is tf.distribute.get_strategy()
  assert make_strategy("one_device").num_replicas_in_sync == 1
  with pytest.raises(ValueError, match="expected one of"):
    make_strategy("horovod")
  with pytest.raises(ValueError, match="tpu_address"):
    make_strategy("tpu")
