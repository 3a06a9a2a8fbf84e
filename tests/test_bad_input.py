"""The bad-input table: every mistyped, impossible or conflicting input stops the binary before
any training with exit 2 and one `error:` line on stderr, alone (nothing is logged before the
input is checked), and leaves existing results alone.

Most rows run `lag_tf.main.main` in this process (TensorFlow is imported once: a row costs
about a second); the row that needs two logical CPUs runs the binary as a subprocess, because
the CPU can only be split before TensorFlow initializes.
"""

import os
import subprocess
import sys

import pytest
from doc_fixtures import USAGE, read
from lag_tf import run_lock
from main_fixtures import run_main_in_process
from main_fixtures import snapshot as _snapshot

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = [
    "--gin_file=gin/experiments/quickstart.gin",
    "--gin_bindings=include 'data/stdlib_corpus_small.gin'",
    "--gin_bindings=SEQUENCE_LENGTH = 32", "--gin_bindings=D_MODEL = 32",
    "--gin_bindings=D_FF = 64", "--gin_bindings=Trainer.global_batch_size = 8",
    "--gin_bindings=Trainer.train_steps = 20", "--gin_bindings=Trainer.steps_per_loop = 10",
    "--gin_bindings=Trainer.eval_every = 10", "--gin_bindings=Trainer.checkpoint_every = 10",
    "--gin_bindings=Trainer.jit_compile = False",
]
LAG = ["--gin_file=gin/experiments/lag_quickstart.gin",
       "--gin_bindings=include 'data/stdlib_corpus_small.gin'"]
GRADUAL = ["--gin_file=gin/experiments/gradual_tiny.gin",
           "--gin_bindings=include 'data/stdlib_corpus_small.gin'"]
BAD_PARAMETER_GIN = "include 'experiments/quickstart.gin'\n\nTrainer.train_stepz = 5\n"
SYNTAX_GIN = "include 'experiments/quickstart.gin'\nTrainer.train_steps = = 5\n"


def _run_in_process(argv, capsys, monkeypatch):
  code, _, err = run_main_in_process(argv, capsys, monkeypatch, info_logs=True)
  return (None if code == 0 else code), err


def _setup_existing_run(model_dir):
  """A model dir holding another run's config and results."""
  os.makedirs(os.path.join(model_dir, "ckpt"))
  for name, text in (("config.gin", "Trainer.train_steps = 7\n"),
                     ("metrics.jsonl", '{"step": 0, "eval_loss": 5.5}\n'),
                     ("ckpt/checkpoint", "model_checkpoint_path: \"ckpt-0\"\n")):
    with open(os.path.join(model_dir, name), "w") as f:
      f.write(text)


def _setup_foreign(model_dir):
  """A user's own directory: their metrics.jsonl (one line, no newline) and notes, no config."""
  os.makedirs(model_dir)
  for name, text in (("metrics.jsonl", '{"run": "mine", "score": 0.93}'),
                     ("notes.txt", "my results\n")):
    with open(os.path.join(model_dir, name), "w") as f:
      f.write(text)


def _setup_locked(model_dir):
  """A live process (this one's parent: surely alive, and not us) holds the dir."""
  os.makedirs(model_dir)
  with open(run_lock.lock_path(model_dir), "w") as f:
    f.write('{"pid": %d, "host": "%s", "started": "2026-11-01T00:00:00Z"}\n'
            % (os.getppid(), run_lock.socket.gethostname()))


# (id, flags, expected text of the error line, setup of the model dir or None)
TABLE = [
    ("unknown_configurable", TINY + ["--gin_bindings=Trainner.train_steps = 5"],
     "did you mean 'Trainer", None),
    ("unknown_parameter_binding", TINY + ["--gin_bindings=Trainer.train_stepz = 5"],
     "did you mean 'Trainer.train_steps'", None),
    ("unknown_parameter_in_file", ["--gin_file={tmp}/bad_parameter.gin"],
     'bad_parameter.gin", line 3', None),
    ("missing_gin_file", ["--gin_file=gin/experiments/no_such_experiment.gin"],
     "gin file not found", None),
    ("malformed_gin", ["--gin_file={tmp}/syntax.gin"], "syntax.gin, line 2", None),
    ("missing_required_macro", ["--gin_file=gin/experiments/grow_once.gin",
                                "--gin_bindings=include 'data/c4_en.gin'", "--no_data_dir"],
     "DATA_DIR", None),
    ("bad_model_kind", TINY + ["--gin_bindings=TransformerConfig.kind = 'seq2seq'"],
     "TransformerConfig.kind", None),
    ("unknown_experiment_kind", TINY + ["--gin_bindings=run_experiment.kind = 'dance'"],
     "run_experiment.kind", None),
    ("bad_strategy_name", TINY + ["--gin_bindings=make_strategy.name = 'mirroredd'"],
     "make_strategy.name='mirroredd'", None),
    ("negative_steps", TINY + ["--gin_bindings=Trainer.train_steps = -5"],
     "Trainer.train_steps=-5", None),
    ("loop_not_dividing_eval", TINY + ["--gin_bindings=Trainer.eval_every = 15"],
     "not a multiple of Trainer.steps_per_loop", None),
    ("vocabulary_smaller_than_tokenizer",
     TINY + ["--gin_bindings=TransformerConfig.vocab_size = 100"],
     "the tokenizer has 260 ids but TransformerConfig.vocab_size=100", None),
    ("dataset_not_there",
     TINY + ["--gin_bindings=LanguageModelingData.dataset_name = 'no_such_dataset'"],
     "unknown tfds dataset 'no_such_dataset'", None),
    ("dataset_not_prepared_in_data_dir",
     TINY + ["--gin_bindings=include 'data/c4_en.gin'", "--empty_data_dir"],
     "not prepared", None),
    ("impossible_pool_shapes", LAG + ["--gin_bindings=TARGET_LAYERS = 1"],
     "invalid growth pool", None),
    ("bad_selector_rule", LAG + ["--gin_bindings=SelectorRule.rule = 'best_guess'"],
     "SelectorRule.rule='best_guess'", None),
    ("probe_longer_than_stage", GRADUAL + ["--gin_bindings=ProbeSchedule.probe_steps = 100000"],
     "longer than the shortest growth stage", None),
    ("changed_config", TINY, "different config.gin", _setup_existing_run),
    ("model_dir_in_use", TINY, "is in use by pid", _setup_locked),
    ("foreign_model_dir", TINY, "is not empty and holds no lag_tf run", _setup_foreign),
    ("foreign_file_lag_tf_would_write", TINY + ["--allow_non_empty"],
     "holds metrics.jsonl, not written by lag_tf", _setup_foreign),
    ("step_larger_than_memory", TINY + ["--gin_bindings=SEQUENCE_LENGTH = 100000"],
     "the largest term is attention scores", None),
    ("heads_not_dividing_width", TINY + ["--gin_bindings=NUM_HEADS = 3"],
     "d_model=32 is not divisible by num_heads=3", None),
    ("unexpected_argument", TINY + ["positional"], "unexpected arguments", None),
    # docs/usage.md "A probe budget": fixed-k LAG over the quickstart's pool needs 82% of the
    # stage. (The full corpus's vocabulary, as documented: the plan refuses before any data is
    # read.)
    ("probes_over_budget", LAG[:1] + ["--gin_bindings=SelectorRule.rule = 'lag'",
                                  "--gin_bindings=SelectorRule.probe_budget_share = 0.3"],
     "the probes need up to 3.84 TFLOPs (82.2% of the stage's 4.68 training TFLOPs) but "
     "SelectorRule.probe_budget_share=0.3 allows 1.4", None),
]


@pytest.mark.parametrize("extra, message, setup", [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])
def test_bad_input_is_refused_before_training(tmp_path, data_dir, capsys, monkeypatch, extra,
                                              message, setup):
  (tmp_path / "bad_parameter.gin").write_text(BAD_PARAMETER_GIN)
  (tmp_path / "syntax.gin").write_text(SYNTAX_GIN)
  model_dir = str(tmp_path / "run")
  if setup:
    setup(model_dir)
  before = _snapshot(model_dir)
  argv = [arg.format(tmp=tmp_path) for arg in extra if not arg.endswith("_data_dir")]
  if "--no_data_dir" not in extra:
    data = str(tmp_path / "empty") if "--empty_data_dir" in extra else data_dir
    argv.append(f"--gin_bindings=DATA_DIR = '{data}'")
  argv.append(f"--model_dir={model_dir}")
  code, err = _run_in_process(argv, capsys, monkeypatch)
  lines = err.strip().splitlines()
  assert code == 2, err[-2000:]
  assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
  assert "Traceback" not in err
  # Nothing existing was touched, and a fresh dir holds nothing a corrected rerun would trip on.
  after = _snapshot(model_dir)
  if before is not None:
    assert after == before
  elif after is not None:
    assert not set(after) & {"config.gin", "metrics.jsonl", "run.lock"}, sorted(after)
    assert not any(name.startswith("ckpt") for name in after), sorted(after)


def test_global_batch_not_divisible_by_replicas(tmp_path, data_dir):
  model_dir = tmp_path / "run"
  command = [sys.executable, "-m", "lag_tf.main"] + TINY + [
      "--gin_bindings=include 'hardware/cpu_mirrored_2.gin'",
      "--gin_bindings=Trainer.global_batch_size = 7", f"--gin_bindings=DATA_DIR = '{data_dir}'",
      f"--model_dir={model_dir}"]
  result = subprocess.run(command, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO),
                          capture_output=True, text=True, timeout=240)
  assert result.returncode == 2, result.stderr[-2000:]
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), lines
  assert "not divisible by the 2 replicas" in lines[0], lines
  assert not (model_dir / "config.gin").exists()


def test_the_documented_probe_budget_error_is_the_one_printed():
  message = next(row[2] for row in TABLE if row[0] == "probes_over_budget")
  assert message in " ".join(read(USAGE).split())


def test_table_has_at_least_15_inputs():
  assert len(TABLE) + 1 >= 15


def test_a_directory_that_hides_an_include_is_named(tmp_path, monkeypatch, capsys):
  """gin reads `include 'runs/lag.gin'` as a package resource first; a `runs/` directory on
  the Python path (a model dir made in the working directory) broke that lookup with a
  TypeError. The error names the directory."""
  (tmp_path / "runs").mkdir()
  monkeypatch.syspath_prepend(str(tmp_path))
  code, err = _run_in_process(["--gin_file=gin/experiments/lag_quickstart.gin", "--dry_run",
                               f"--model_dir={tmp_path / 'run'}"], capsys, monkeypatch)
  lines = err.strip().splitlines()
  assert code == 2 and len(lines) == 1, err[-2000:]
  assert "runs/ on the Python path" in lines[0] and "'runs/lag.gin'" in lines[0], lines[0]
