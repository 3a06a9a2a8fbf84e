"""Adaptive gradual stacking: grow in stages (e.g. 2 -> 4 -> 6 -> 8 layers), choosing at each
stage which block to copy by probing the candidates with LAG.

Gradual stacking always copies the top block, MIDAS the middle one; here the pool of every stage
is generated from a template (copy the g-layer block at each allowed position, plus
zero-initialized new layers) and LAG commits the best per stage. The fixed baselines run on the
same machinery with a one-candidate pool ('top' = gradual stacking, 'middle' = MIDAS).

lag_tf.experiments.schedule.gradual_schedule turns a run's settings into its checked stages
with these pieces: the experiment runs that schedule and lag_tf.plan prices it.
"""

from __future__ import annotations

import dataclasses
from typing import List, Optional, Tuple

from lag_tf import gin_registry
from lag_tf.growth import Candidate, Pool
from lag_tf.models import TransformerConfig
from lag_tf.models.flops import flops_per_token

POSITIONS = ("top", "middle", "bottom")
ALLOCATIONS = ("constant", "proportional")
MODES = ("adaptive", "gradual_stacking", "midas", "scratch")
# What a fixed mode sets in StagePoolTemplate, whatever gin binds (the unused-binding report
# reads the keys): gradual stacking copies the top block, MIDAS the middle one; neither adds
# zero-initialized layers or the noisy copy.
MODE_TEMPLATES = {
    "gradual_stacking": {"positions": ("top",), "zero_layers": False, "noisy_copy_scale": 0.0},
    "midas": {"positions": ("middle",), "zero_layers": False, "noisy_copy_scale": 0.0}}


@gin_registry.configurable
@dataclasses.dataclass(frozen=True)
class StageSchedule:
  """stage_layers: depth of each stage; stage 0 is the base model (e.g. (2, 4, 6, 8)).
  total_steps: training steps over all stages.
  allocation: 'constant' (equal steps per stage) or 'proportional' (steps proportional to the
    stage's depth, so deeper, costlier stages train longer).
  stage_steps: explicit steps per stage (overrides total_steps and allocation).
  """

  stage_layers: Tuple[int, ...] = (2, 4, 6, 8)
  total_steps: int = 1000
  allocation: str = "constant"
  stage_steps: Tuple[int, ...] = ()

  def __post_init__(self):
    layers = list(self.stage_layers)
    if len(layers) < 2 or any(b <= a for a, b in zip(layers, layers[1:])) or layers[0] < 1:
      raise ValueError(f"StageSchedule.stage_layers={self.stage_layers}: expected at least two "
                       "increasing depths >= 1")
    if self.allocation not in ALLOCATIONS:
      raise ValueError(f"StageSchedule.allocation={self.allocation!r}: expected one of "
                       f"{ALLOCATIONS}")
    if self.stage_steps and len(self.stage_steps) != len(layers):
      raise ValueError(f"StageSchedule.stage_steps has {len(self.stage_steps)} entries for "
                       f"{len(layers)} stages")
    if min(self.steps()) < 1:
      raise ValueError(f"StageSchedule: a stage gets {min(self.steps())} steps; raise "
                       "total_steps")

  def steps(self) -> List[int]:
    """Training steps of each stage (they add up to total_steps)."""
    if self.stage_steps:
      return [int(s) for s in self.stage_steps]
    weights = ([1.0] * len(self.stage_layers) if self.allocation == "constant"
               else [float(n) for n in self.stage_layers])
    raw = [self.total_steps * w / sum(weights) for w in weights]
    steps = [int(r) for r in raw]
    steps[-1] += self.total_steps - sum(steps)
    return steps


@gin_registry.configurable
@dataclasses.dataclass(frozen=True)
class StagePoolTemplate:
  """positions: where the copied g-layer block is taken from ('top', 'middle', 'bottom'); the
    copy goes right after its source block.
  zero_layers: also offer g zero-initialized (function-preserving) new layers on top.
  noise_scale, optimizer_state: applied to every generated candidate.
  noisy_copy_scale: when > 0, also offer `copy_top_noisy`, the top block's copy with this much
    relative noise on the copied kernels (noise std = scale x each kernel's std). A deliberately
    poor candidate, to see what a selector pays to reject a clearly bad choice
    (gin/experiments/speedup_small_noisy_pool.gin); 0 (default): not offered.
  """

  positions: Tuple[str, ...] = POSITIONS
  zero_layers: bool = True
  noise_scale: float = 0.0
  optimizer_state: str = "map"
  noisy_copy_scale: float = 0.0

  def __post_init__(self):
    unknown = [p for p in self.positions if p not in POSITIONS]
    if unknown:
      raise ValueError(f"StagePoolTemplate.positions: unknown {unknown}; expected {POSITIONS}")
    if not self.positions and not self.zero_layers:
      raise ValueError("StagePoolTemplate generates no candidate")
    if self.noisy_copy_scale < 0:
      raise ValueError(f"StagePoolTemplate.noisy_copy_scale={self.noisy_copy_scale}: expected "
                       ">= 0")


def block_start(position: str, num_layers: int, block: int) -> int:
  """First layer of the g-layer block at `position` of an L-layer model."""
  if position == "top":
    return num_layers - block
  if position == "bottom":
    return 0
  return (num_layers - block) // 2


def stage_pool(template: StagePoolTemplate, num_layers: int, target_layers: int,
               stage: int) -> Pool:
  """The candidates that grow an L-layer model to `target_layers` at this stage."""
  grow_by = target_layers - num_layers
  block = min(grow_by, num_layers)  # A block cannot be longer than the model; copies repeat.
  candidates, seen = [], set()
  for position in template.positions:
    start = block_start(position, num_layers, block)
    if start in seen:  # E.g. top == middle == bottom for a 1-layer model.
      continue
    seen.add(start)
    candidates.append(Candidate(
        name=f"copy_{position}", depth="copy_block",
        depth_params={"target_layers": target_layers, "start": start, "stop": start + block},
        noise_scale=template.noise_scale, optimizer_state=template.optimizer_state))
  if template.zero_layers:
    candidates.append(Candidate(
        name="zero_top", depth="zero_output_layers",
        depth_params={"target_layers": target_layers, "position": "top"},
        noise_scale=template.noise_scale, optimizer_state=template.optimizer_state))
  if template.noisy_copy_scale > 0:
    start = block_start("top", num_layers, block)
    candidates.append(Candidate(
        name="copy_top_noisy", depth="copy_block",
        depth_params={"target_layers": target_layers, "start": start, "stop": start + block},
        noise_scale=template.noisy_copy_scale, optimizer_state=template.optimizer_state))
  return Pool(candidates, name=f"stage-{stage}")


def template_for_mode(mode: str, template: StagePoolTemplate) -> StagePoolTemplate:
  """The stage pool of `mode`: MODE_TEMPLATES' fields for a fixed mode; adaptive and scratch
  keep `template`."""
  return dataclasses.replace(template, **MODE_TEMPLATES.get(mode, {}))


def scratch_steps(stages: StageSchedule, base_config: TransformerConfig,
                  mask_probability: Optional[float]) -> int:
  """Steps of the final-size model that cost what one gradual run's training costs (at the run's
  mask probability: models/flops.flops_per_token)."""
  budget = sum(steps * flops_per_token(base_config.replace(num_layers=layers), mask_probability)
               for steps, layers in zip(stages.steps(), stages.stage_layers))
  final = base_config.replace(num_layers=stages.stage_layers[-1])
  return max(1, int(budget // flops_per_token(final, mask_probability)))
