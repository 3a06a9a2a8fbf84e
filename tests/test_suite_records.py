"""The comparison suite's records of its runs: typed, and written byte for byte as before."""

import glob
import json
import os

from benchmarks.speedup import records
from benchmarks.speedup.records import PlanRecord, RunInfo, RunRecord, StageRecord

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")


def _committed_paths():
  return sorted(glob.glob(os.path.join(RESULTS, "*", "*", "runs", "*", "*.json")))


def test_every_committed_record_is_written_back_byte_for_byte(tmp_path):
  paths = _committed_paths()
  assert len(paths) > 50
  for path in paths:
    results_dir = os.path.dirname(os.path.dirname(os.path.dirname(path)))
    record = RunRecord.from_json(json.load(open(path)))
    assert records.record_path(results_dir, record.run.method, record.run.seed) == path
    out = tmp_path / os.path.relpath(results_dir, RESULTS)
    written = records.write_record(str(out), record)
    assert open(written).read() == open(path).read(), path


def test_committed_records_read_as_types():
  decoder = os.path.join(RESULTS, "speedup_small", "decoder")
  committed = records.read_records(decoder)
  assert [r.run.method for r in committed] == sorted(r.run.method for r in committed)
  lag = next(r for r in committed if r.run.method == "lag_gradual")
  assert isinstance(lag.run.plan.phases[0], StageRecord) and lag.run.finished
  assert len(lag.decisions) == len(lag.run.plan.phases) - 1
  assert lag.winners == [d.winner for d in lag.decisions] and all(lag.winners)
  assert (lag.total_flops, lag.final_loss) == lag.curve[-1]


def test_a_run_info_is_written_beside_its_run_dir_and_read_back(tmp_path):
  method_dir = str(tmp_path / "scratch")
  plan = PlanRecord(method="scratch", phases=[StageRecord(layers=2, steps=10,
                                                          flops_per_step=1e9)],
                    probe_steps=0, budget_flops=1e10, total_flops=1e10, overhead_flops=0.0)
  info = RunInfo(method="scratch", seed=3, kind="decoder", experiment="train", plan=plan,
                 bindings=["a = 1"])
  run_dir = records.run_dir(method_dir, 3)
  assert records.read_info(run_dir) is None and not records.started_runs(method_dir)
  records.write_info(run_dir, info)
  # Before an attempt has ended the record has no wall time.
  assert "wall_seconds" not in json.load(open(records.info_path(run_dir)))
  assert records.read_info(run_dir) == info
  assert records.started_runs(method_dir) == [run_dir]
  assert records.log_path(run_dir) == os.path.join(method_dir, "seed-3.log")
  assert records.info_path(run_dir) == os.path.join(method_dir, "seed-3.json")
  assert run_dir == os.path.join(method_dir, "seed-3")
