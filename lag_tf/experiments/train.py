"""`train`: train one model from scratch (or resume it) and write a summary."""

from __future__ import annotations

from absl import logging

from lag_tf import gin_registry
from lag_tf import atomic_file
from lag_tf import model_dir_store as store
from lag_tf.data import LanguageModelingData
from lag_tf.models import TransformerConfig, count_parameters
from lag_tf.training.progress import RunProgress
from lag_tf.training.trainer import Trainer


@gin_registry.configurable(denylist=["strategy", "model_dir", "run_progress"])
def train_experiment(strategy, model_dir: str, run_progress: RunProgress = None) -> dict:
  """Trains `TransformerConfig()` on `LanguageModelingData()` with `Trainer` (all from gin)."""
  config = TransformerConfig()
  data = LanguageModelingData()
  trainer = Trainer(config, data, strategy, model_dir, run_progress=run_progress)
  trainer.restore()
  final = trainer.train()
  initial = [r for r in store.read_metrics(trainer.metrics.path)
             if r.step == 0 and r.eval_loss is not None]
  first_eval = initial[0].eval_loss if initial else None
  # Training FLOPs as lag_tf.plan counts them (its evaluations are reported apart).
  flops = trainer.global_step * trainer.tokens_per_step * trainer.flops_per_token
  result = {"params": count_parameters(config), "steps": trainer.global_step,
            "final_eval_loss": final.eval_loss, "first_eval_loss": first_eval, "flops": flops}
  if trainer.is_chief:
    _write_summary(model_dir, config, result)
  logging.info("Done: %s", result)
  return result


def _write_summary(model_dir: str, config: TransformerConfig, result: dict) -> None:
  lines = ["# train summary", "",
           f"model: {config.kind}, {config.num_layers} layers x d_model {config.d_model}, "
           f"{result['params']:,} parameters", f"steps: {result['steps']}",
           f"final eval loss: {result['final_eval_loss']:.4f}",
           f"training compute: {result['flops'] / 1e12:.4g} TFLOPs"]
  if result["first_eval_loss"] is not None:
    lines.append(f"eval loss at step 0: {result['first_eval_loss']:.4f}")
  atomic_file.write_text(store.summary_path(model_dir), "\n".join(lines) + "\n")
