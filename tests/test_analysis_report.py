"""Reading experiment dirs, the report with its PNGs, and the analyze binary, on small synthetic
studies and LAG decision dirs written here."""

import json
import os
import subprocess
import sys

import pytest
from matplotlib import image

from analysis_fixtures import GROWTH_STEP, write_candidate, write_study
from lag_tf.analysis import report, runs

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_decision(root, stage, winner, k=32):
  candidates = {}
  for name in ("top", "middle", "bottom"):
    losses = {str(s): 3.0 + 0.1 * (name == "top") - 0.002 * s * (1 + (name == winner))
              for s in (0, 8, 16, k)}
    candidates[name] = {"eval_losses": losses, "params": 5000, "flops_per_token": 3e4,
                        "status": "failed" if name == "bottom" and stage == 1 else "ok",
                        "score": None}
    if candidates[name]["status"] == "failed":
      candidates[name]["failed"] = "loss is nan at probe step 9"
  os.makedirs(os.path.join(root, "decisions"), exist_ok=True)
  record = {"stage": stage, "rule": "lag", "winner": winner, "candidates": candidates,
            "probe_steps": k, "probe_cost_flops": 1.5e12, "config_hash": "abc123",
            "committed_at": "2026-11-01T00:00:00Z"}
  with open(os.path.join(root, "decisions", f"stage-{stage}.json"), "w") as f:
    json.dump(record, f)


def assert_png(path):
  pixels = image.imread(path)
  assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
  assert pixels.shape[2] in (3, 4)


def test_reader_converts_steps_and_tolerates_a_truncated_line(tmp_path):
  directory = tmp_path / "candidates" / "a"
  write_candidate(str(directory), "a", last_step=50)
  with open(directory / "metrics.jsonl", "a") as f:
    f.write('{"step": 151, "loss": 2.')  # Killed mid-write.
  run = runs.read_candidate(str(directory))
  assert run.eval_steps.tolist() == [0, 1, 2, 4, 8, 16, 32, 50]
  assert run.eval_batch_losses.shape == (8, 8) and run.failure is None
  assert run.info.flops_per_step == 6e3 * 256
  os.remove(directory / "candidate.json")  # growth_step then defaults to the first eval step.
  assert runs.read_candidate(str(directory)).eval_steps[0] == 0


def test_study_report_headline_and_pngs(tmp_path):
  root = write_study(tmp_path / "study")
  headline = report.build_report(root, num_resamples=200)
  assert headline["kind"] == "study" and headline["final_step"] == 200 and headline["finished"]
  assert headline["num_candidates"] == 5
  assert headline["rho_init"] == pytest.approx(-1.0)  # Init ranking exactly backwards.
  assert headline["chosen_at_init"] == "a" and headline["best_final"] == "e"
  assert headline["regret_at_init"] == pytest.approx(0.4, abs=0.02)
  assert headline["smallest_k"] == 32 and headline["regret_at_k"] == 0.0
  assert headline["chosen_at_k"] == "e"
  assert 0 < headline["compute_fraction_at_k"] == pytest.approx(32 / 200)
  points = [row["point"] for row in headline["rows"]]
  assert points == ["init", "1% of T", "2% of T", "5% of T", "10% of T", "k (rho >= 0.8)", "T"]
  assert [row["step"] for row in headline["rows"]] == [0, 2, 4, 8, 16, 32, 200]

  text = open(headline["report"]).read()
  assert "| at | probe step | probe compute | Spearman rho (CI)" in text
  assert "**k = 32**" in text and "| e * |" in text
  for name in ("eval_curves.png", "correlation.png", "regret.png"):
    assert f"]({name})" in text
  for path in headline["plots"].values():
    assert_png(path)
  assert "study: 5 candidates, T = 200" in report.format_headline(headline)


def test_partly_finished_study_with_a_failed_candidate(tmp_path):
  root = write_study(tmp_path / "partial", last_steps={"b": 125}, nan_at={"d": 75})
  headline = report.build_report(root, num_resamples=50)
  assert headline["final_step"] == 125 and not headline["finished"]
  assert headline["num_failed"] == 1
  text = open(headline["report"]).read()
  assert "Partly finished study" in text and "b: 125" in text
  assert "failed: loss is nan at probe step 75 (excluded)" in text
  assert headline["best_final"] == "e"  # d (failed) is excluded.
  assert_png(headline["plots"]["eval loss after growth"])


def test_study_over_seeds(tmp_path):
  for seed in (0, 1):
    write_study(tmp_path / "seeds" / f"seed-{seed}", seed=seed)
  table = runs.study_table(runs.read_experiment(str(tmp_path / "seeds")).study)
  assert table.seeds == ["0", "1"] and table.batch_losses.shape == (2, 5, 14, 8)
  headline = report.build_report(str(tmp_path / "seeds"), num_resamples=50)
  assert headline["num_seeds"] == 2 and headline["smallest_k"] == 32


def test_gradual_decisions_report(tmp_path):
  root = tmp_path / "gradual"
  write_decision(str(root), 0, "middle")
  write_decision(str(root), 1, "top")
  write_candidate(str(root / "stage-1" / "candidates" / "top"), "top", last_step=32, curve="a")
  experiment = runs.read_experiment(str(root))
  assert experiment.kind == "gradual" and experiment.study is None
  assert list(experiment.lag.stage_candidates) == [1]
  headline = report.build_report(str(root))
  assert headline["winners"] == {"0": "middle", "1": "top"}
  assert headline["init_choices"]["0"] in ("middle", "bottom")
  text = open(headline["report"]).read()
  assert "### Stage 1: winner **top**" in text and "| bottom | 5000 | failed: loss is nan at probe step 9 |" in text
  for stage in headline["stages"]:
    assert_png(stage["plot"])
  assert "| stage | rule | k | winner | init-loss choice |" in report.format_headline(headline)


def test_missing_or_empty_dir_is_an_error(tmp_path):
  with pytest.raises(runs.ExperimentDirError, match="does not exist"):
    runs.read_experiment(str(tmp_path / "absent"))
  with pytest.raises(runs.ExperimentDirError, match="nothing|no candidates"):
    runs.read_experiment(str(tmp_path))


def _analyze(*args):
  env = dict(os.environ, PYTHONPATH=REPO)
  return subprocess.run([sys.executable, "-m", "lag_tf.analyze", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=120)


def test_binary_exit_codes(tmp_path):
  missing = _analyze(f"--experiment_dir={tmp_path / 'absent'}")
  assert missing.returncode == 2
  assert missing.stderr.startswith("error:") and len(missing.stderr.strip().splitlines()) == 1
  root = write_study(tmp_path / "study", last_steps={"c": 100})
  done = _analyze(f"--experiment_dir={root}", "--bootstrap=50")
  assert done.returncode == 0, done.stderr[-2000:]
  assert "T = 100 (partly finished)" in done.stdout and "| init | 0 |" in done.stdout
  assert os.path.exists(os.path.join(root, "report", "report.md"))


def test_a_candidate_whose_train_loss_diverged_is_excluded(tmp_path):
  root = write_study(tmp_path / "study")
  with open(os.path.join(root, "candidates", "e", "metrics.jsonl"), "a") as f:
    f.write(json.dumps({"step": GROWTH_STEP + 60, "loss": "nan"}) + "\n")
  headline = report.build_report(root, num_resamples=20)
  assert headline["num_failed"] == 1 and headline["best_final"] == "d"
  assert "failed: loss is nan at probe step 60 (excluded)" in open(headline["report"]).read()


def test_one_stage_lag_run_uses_its_candidates_dir(tmp_path):
  root = tmp_path / "lag"
  write_decision(str(root), 0, "middle")
  write_candidate(str(root / "candidates" / "middle"), "middle", last_step=32, curve="a")
  experiment = runs.read_experiment(str(root))
  assert experiment.kind == "lag" and list(experiment.lag.stage_candidates[0]) == ["middle"]
  headline = report.build_report(str(root))
  assert headline["kind"] == "lag" and headline["winners"] == {"0": "middle"}
