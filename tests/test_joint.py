"""Joint GRPO (reports + grounding in one run): the task mix, the recipes, and each reward scoring only its own rows."""

import json
import runpy
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import tiny_grpo_args
from datasets import Dataset

from radvlm_grpo.data.loading import mix_tasks
from radvlm_grpo.rewards import get_reward_funcs
from radvlm_grpo.vocab.schema import GROUNDING_TASKS, PHRASE_GROUNDING, REPORT_GENERATION

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_mix_tasks_keeps_the_stated_shares_and_the_scarcest_task_sets_the_size():
    rows = [REPORT_GENERATION] * 90 + [PHRASE_GROUNDING] * 20
    dataset = Dataset.from_dict({"task": rows, "id": [str(i) for i in range(len(rows))]})
    mixed = mix_tasks(dataset, [REPORT_GENERATION, PHRASE_GROUNDING], [0.5, 0.5], seed=1)
    assert Counter(mixed["task"]) == {REPORT_GENERATION: 20, PHRASE_GROUNDING: 20}
    assert len(set(mixed["id"])) == 40  # drawn without replacement
    assert mixed["id"] == mix_tasks(dataset, [REPORT_GENERATION, PHRASE_GROUNDING], [0.5, 0.5], seed=1)["id"]
    skewed = mix_tasks(dataset, [REPORT_GENERATION, PHRASE_GROUNDING], [3, 1], seed=1)
    assert Counter(skewed["task"]) == {REPORT_GENERATION: 60, PHRASE_GROUNDING: 20}
    with pytest.raises(ValueError, match="one per task"):
        mix_tasks(dataset, [REPORT_GENERATION], [0.5, 0.5])


@pytest.mark.parametrize("recipe", ["radvlm/grpo_joint.yaml", "qwen3vl/grpo_joint.yaml", "demo/grpo_joint.yaml"])
def test_joint_recipes_pair_a_report_reward_with_a_grounding_reward(recipe):
    config = yaml.safe_load((REPO_ROOT / "recipes" / recipe).read_text())
    assert set(config["tasks"]) == {REPORT_GENERATION, *GROUNDING_TASKS}
    assert len(config["task_weights"]) == 4 and config["reward_weights"] == [1.0, 1.0]
    assert config["reward_funcs"][1] == "soft_f1"
    assert (config["beta"], config["epsilon"], config["epsilon_high"]) == (0.01, 0.2, 0.28)
    assert (config["loss_type"], config["scale_rewards"]) == ("dapo", "group")


def test_each_reward_scores_only_its_own_rows():
    finding_f1, soft_f1 = get_reward_funcs(["finding_f1", "soft_f1"])
    columns = {
        "task": [REPORT_GENERATION, PHRASE_GROUNDING],
        "solution": ["The heart is enlarged.", "[0.1, 0.1, 0.3, 0.3]"],
        "boxes": [[], [[0.1, 0.1, 0.3, 0.3]]],
    }
    completions = ["The heart is enlarged.", "[0.1, 0.1, 0.3, 0.3]"]
    assert finding_f1(completions, **columns) == [1.0, None]
    assert soft_f1(completions, **columns) == [None, 1.0]


@pytest.mark.slow
def test_the_demo_joint_recipe_trains_both_tasks(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    out = tmp_path / "joint"
    args = [
        *tiny_grpo_args("grpo_joint.yaml", tiny_model_dir, synthetic_dir, out, max_steps=2, batch_size=8),
        "--save_strategy", "no",
        "--validation_steps", "2",
        "--validation_samples", "8",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["scripts/grpo.py", *args])
    runpy.run_path(str(REPO_ROOT / "scripts/grpo.py"), run_name="__main__")
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    keys = set().union(*history)
    assert {"rewards/finding_f1/mean", "rewards/soft_f1/mean"} <= keys
    # Per-task sub-scores: finding_f1 only on reports, soft_f1 only on grounding rows.
    assert not any(k.startswith("finding_f1/") and k.endswith("_grounding") for k in keys)
    assert f"soft_f1/{REPORT_GENERATION}" not in keys
    assert {"validation/soft_f1", "validation/gleu", "validation/finding_f1"} <= keys
