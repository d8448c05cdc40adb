"""Validation during GRPO (``validation_steps``): task metrics by hand, and the logged keys at the right steps, with
resume, through scripts/grpo.py on the tiny model."""

import json
import runpy
import sys
from pathlib import Path

import pytest
from conftest import tiny_grpo_args

from radvlm_grpo.training.validation import task_metrics
from radvlm_grpo.vocab.schema import PHRASE_GROUNDING, REPORT_GENERATION

REPO_ROOT = Path(__file__).resolve().parents[1]
REPORT = "An endotracheal tube is in place. The heart is enlarged. No pleural effusion or pneumothorax."


def test_task_metrics_by_hand():
    tasks = [PHRASE_GROUNDING, PHRASE_GROUNDING, REPORT_GENERATION, REPORT_GENERATION]
    ids = ["synthetic-test-00000", "synthetic-test-00001", "synthetic-test-00002", "synthetic-test-00003"]
    texts = ["[0.1, 0.1, 0.3, 0.3]", "no box", REPORT, "The lungs are clear."]
    solutions = ["[0.1, 0.1, 0.3, 0.3]", "[0.5, 0.5, 0.7, 0.7]", REPORT, REPORT]
    boxes = [[[0.1, 0.1, 0.3, 0.3]], [[0.5, 0.5, 0.7, 0.7]], [], []]
    metrics = task_metrics(tasks, ids, texts, solutions, boxes)
    assert metrics["soft_f1"] == pytest.approx(0.5)  # an exact box (1) and no box (0)
    assert metrics["map_50"] == pytest.approx(0.5)
    assert 0.0 < metrics["gleu"] < 1.0 and 0.0 < metrics["rouge_l"] < 1.0
    # Findings: the reference states 2 (tube, cardiomegaly); one report states both, the other none: TP 2, FN 2.
    assert metrics["finding_f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 2))
    # Rows not known to be synthetic get no finding-F1 (it only reads the synthetic sentences).
    assert "finding_f1" not in task_metrics(tasks, ["mimic-1"] * 4, texts, solutions, boxes)


def test_thinking_answers_and_the_qwen_grid_are_read_as_evaluation_reads_them():
    tasks, ids = [PHRASE_GROUNDING, REPORT_GENERATION], ["a", "b"]
    texts = ["<think>maybe [1, 1, 2, 2]</think>[100, 100, 300, 300]", f"<think>{REPORT}</think>The lungs are clear."]
    solutions, boxes = ["", REPORT], [[[0.1, 0.1, 0.3, 0.3]], []]
    metrics = task_metrics(tasks, ids, texts, solutions, boxes, box_scale=1000, thinking=True)
    assert metrics["soft_f1"] == pytest.approx(1.0)  # the box after </think>, on the 0-1000 grid
    assert metrics["rouge_l"] < 0.5  # the report after the last </think>, not the reasoning that copies the reference
    no_close = task_metrics(
        tasks, ids, ["[100, 100, 300, 300]", REPORT], solutions, boxes, box_scale=1000, thinking=True
    )
    assert no_close["soft_f1"] == 0.0 and no_close["rouge_l"] == 0.0  # no </think>: no answer


def run_grpo(monkeypatch, output_dir: Path, model_dir: Path, data_dir: Path, max_steps: int) -> dict:
    args = [
        *tiny_grpo_args("grpo_grounding.yaml", model_dir, data_dir, output_dir, max_steps),
        "--save_strategy", "steps",
        "--save_steps", "2",
        "--validation_steps", "2",
        "--validation_samples", "6",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["scripts/grpo.py", *args])
    runpy.run_path(str(REPO_ROOT / "scripts/grpo.py"), run_name="__main__")
    return json.loads((output_dir / "trainer_state.json").read_text())


def validations(state: dict) -> dict[int, dict]:
    return {
        log["step"]: {k: v for k, v in log.items() if k.startswith("validation/")}
        for log in state["log_history"]
        if any(k.startswith("validation/") for k in log)
    }


@pytest.mark.slow
def test_validation_logs_at_its_steps_and_continues_after_a_resume(
    monkeypatch, tmp_path, tiny_model_dir, synthetic_dir
):
    out = tmp_path / "run"
    first = validations(run_grpo(monkeypatch, out, tiny_model_dir, synthetic_dir, max_steps=2))
    assert sorted(first) == [2]
    keys = set(first[2])
    assert {"validation/soft_f1", "validation/map_50", "validation/reward/soft_f1"} <= keys
    assert {"validation/completion_tokens", "validation/reward/soft_f1/no_box_frac"} <= keys
    assert 0.0 <= first[2]["validation/soft_f1"] <= 1.0
    # The same command with more steps resumes from checkpoint-2: history kept, validation at steps 4 and 6 added.
    resumed = validations(run_grpo(monkeypatch, out, tiny_model_dir, synthetic_dir, max_steps=6))
    assert sorted(resumed) == [2, 4, 6]
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    # One validation per step, even at the last step (which is also a multiple of validation_steps).
    assert sum("validation/soft_f1" in log for log in history) == 3
    assert resumed[2] == first[2]
    # The final card shows the last validation.
    card = (out / "README.md").read_text()
    assert "validation/soft_f1" in card


def test_validation_is_off_by_default_and_refuses_bad_settings():
    from radvlm_grpo.training.configs import GRPOScriptArguments

    assert GRPOScriptArguments().validation_steps == 0
    with pytest.raises(ValueError, match="validation_steps must be >= 0"):
        GRPOScriptArguments(validation_steps=-1)
    with pytest.raises(ValueError, match="validation_samples > 0"):
        GRPOScriptArguments(validation_steps=2, validation_samples=0)
