"""The GRPO stage learns: ``scripts/grpo.py`` raises a simple verifiable reward on the tiny model, and only when it should.

The reward is ``digit_share`` (``radvlm_grpo.rewards.demo``): the share of a completion's characters that are digits.
The random tiny model does not maximise it (0.01-0.05 over the first steps), and it needs no reference, so its rise is the
policy moving towards the reward. The criterion: the mean reward of the last 4 logged steps exceeds that of the first 4
by more than ``MARGIN``. The two controls run the same command and must stay below it: the reward's sign flipped
(``--reward_weights -1``: the policy is pushed away from digits) and a learning rate of 0 (the policy cannot move).

Measured on the 2-core CPU (20 steps, 2 prompts x 8 completions, lr 0.01; rise = last-4 mean - first-4 mean):

| seed | rise, digit_share | rise, sign flipped | rise, lr 0 |
|---|---|---|---|
| 1 | 0.602 | -0.027 | -0.009 |
| 2 | 0.517 | -0.014 | +0.007 |
| 3 | 0.368 | -0.017 | +0.002 |
| 4 | 0.776 | -0.024 | -0.005 |
| 5 | 0.795 | -0.019 | +0.001 |

The smallest learning rise (0.37) is 3.7x the margin; the controls stay within 0.03 of 0, so 0.1 is far from both.
Each run takes about 13 s. The test runs seed 1.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from radvlm_grpo.rewards import get_reward_funcs
from radvlm_grpo.rewards.demo import digit_share

REPO_ROOT = Path(__file__).resolve().parents[1]

STEPS = 20
WINDOW = 4  # logged steps averaged at each end
MARGIN = 0.1


def reward_rise(tiny_model_dir: Path, synthetic_dir: Path, output_dir: Path, *extra: str, seed: int = 1) -> float:
    """Run scripts/grpo.py with the digit_share reward; the last-WINDOW mean reward minus the first-WINDOW one."""
    command = [
        sys.executable, "scripts/grpo.py", "recipes/demo/grpo_report.yaml",
        "--model_name_or_path", str(tiny_model_dir),
        "--dataset_name", str(synthetic_dir / "grpo"),
        "--output_dir", str(output_dir),
        "--reward_funcs", "digit_share",
        "--max_steps", str(STEPS),
        "--per_device_train_batch_size", "16",
        "--num_generations", "8",
        "--max_completion_length", "16",
        "--learning_rate", "0.01",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--seed", str(seed),
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT / "src")}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((output_dir / "trainer_state.json").read_text())
    rewards = [log["rewards/digit_share/mean"] for log in state["log_history"] if "rewards/digit_share/mean" in log]
    assert len(rewards) == STEPS
    return float(np.mean(rewards[-WINDOW:]) - np.mean(rewards[:WINDOW]))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "learns"),
    [((), True), (("--reward_weights=-1",), False), (("--learning_rate", "0"), False)],
    ids=["learns", "sign_flipped_does_not", "lr0_does_not"],
)
def test_grpo_learns_digit_share(tmp_path, tiny_model_dir, synthetic_dir, extra, learns):
    rise = reward_rise(tiny_model_dir, synthetic_dir, tmp_path / "run", *extra)
    if learns:
        assert rise > MARGIN, f"digit_share rose by {rise:.3f}, not more than {MARGIN}: the policy did not learn"
    else:
        assert rise < MARGIN, f"digit_share rose by {rise:.3f} although the control cannot learn"


@pytest.mark.parametrize(
    ("text", "share"), [("123", 1.0), ("a1 b2", 0.5), ("no digits.", 0.0), ("", 0.0), ("  ", 0.0), ("[0.25]", 0.5)]
)
def test_digit_share(text, share):
    assert digit_share(text) == share


def test_digit_share_reward_reads_completions_and_thinking():
    (reward,) = get_reward_funcs(["digit_share"])
    assert reward.__name__ == "digit_share"
    assert reward([[{"role": "assistant", "content": "12ab"}], "x", None]) == [0.5, 0.0, 0.0]
    (thinking,) = get_reward_funcs(["digit_share"], thinking=True)
    assert thinking(["<think>abc</think> 99", "1234 no close"]) == [1.0, 0.0]
