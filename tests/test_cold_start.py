"""Cold-start traces: the teacher prompt, every filter, the mixing ratio, resume, and a tiny end-to-end run."""

import json
import runpy
import sys
from pathlib import Path

import pytest
from datasets import Dataset, load_from_disk
from huggingface_hub import ModelCard

from radvlm_grpo.data.cold_start import (
    TraceFilter,
    close_with_answer,
    load_guide,
    normalize_answer,
    reject_reason,
    sft_row,
    teacher_prompt,
)
from radvlm_grpo.data.mixing import mix_datasets

REPO_ROOT = Path(__file__).resolve().parents[1]
REPORT = "The lungs are clear. No pleural effusion or pneumothorax."
FILTER = TraceFilter(min_reasoning_chars=20, max_reasoning_chars=400)
REASONING = "<think>I check both lung fields and the costophrenic angles; both are sharp.</think>"


def test_teacher_prompt_holds_question_answer_and_optional_guide():
    prompt = teacher_prompt("Provide a radiology report for this Chest X-Ray. /think", REPORT)
    assert "Question: Provide a radiology report for this Chest X-Ray.\n" in prompt  # the suffix is not shown
    assert f"Correct final answer: {REPORT}" in prompt
    assert "<think> and </think>" in prompt and "never mention" in prompt
    assert "reading guide" not in prompt
    guided = teacher_prompt("Q?", "A.", guide=load_guide("default"))
    assert "reading guide" in guided and "costophrenic angles" in guided


@pytest.mark.parametrize(
    "trace,reason",
    [
        (f"I check the lungs carefully and they are clear. {REPORT}", "no </think>"),
        (f"{REASONING} <think>more</think> {REPORT}", "several think blocks"),
        (f"<think>The ground truth says the lungs are clear, so I agree.</think> {REPORT}", "leaks the given answer"),
        (
            f"<think>Looking at the image, the provided answer matches what I see.</think> {REPORT}",
            "leaks the given answer",
        ),
        (f"<think>Lungs fine.</think> {REPORT}", "reasoning too short"),
        (f"<think>{'The lungs look clear. ' * 30}</think> {REPORT}", "reasoning too long"),
        (REASONING, "answer differs"),  # the teacher dropped the answer
        (f"{REASONING} The lungs are clear. Small left effusion.", "answer differs"),
    ],
)
def test_report_filters(trace, reason):
    assert reject_reason(trace, REPORT, "report_generation", [], FILTER) == reason


def test_report_trace_kept_after_normalisation():
    trace = f"{REASONING}\n\n  the lungs are CLEAR.  No pleural effusion or pneumothorax "
    assert reject_reason(trace, REPORT, "report_generation", [], FILTER) is None
    assert normalize_answer(" A  b. ") == "a b"


def test_grounding_filter_compares_boxes():
    boxes = [[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.9, 0.8]]
    answer = "The nodule is located at [0.1, 0.2, 0.3, 0.4] and [0.5, 0.5, 0.9, 0.8] on the image."
    same_boxes_other_words = f"{REASONING} Found at [0.5, 0.5, 0.9, 0.8] and [0.1, 0.2, 0.3, 0.4]."
    assert reject_reason(same_boxes_other_words, answer, "abnormality_grounding", boxes, FILTER) is None
    one_box = f"{REASONING} Found at [0.1, 0.2, 0.3, 0.4]."
    assert reject_reason(one_box, answer, "abnormality_grounding", boxes, FILTER) == "boxes differ from the answer"
    moved = f"{REASONING} Found at [0.1, 0.2, 0.3, 0.4] and [0.5, 0.5, 0.9, 0.85]."
    assert reject_reason(moved, answer, "abnormality_grounding", boxes, FILTER) == "boxes differ from the answer"


def test_append_mode_closes_with_the_answer_and_rows_get_the_suffix():
    trace = close_with_answer("<think>some reasoning about the heart size here</think> wrong answer", REPORT)
    assert trace.endswith(f"</think>\n\n{REPORT}") and trace.count("<think>") == 1
    prompt = [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": "Report?"}]}]
    row = sft_row(prompt, "IMG", trace, "report_generation", "r1")
    assert row["messages"][0]["content"][1]["text"] == "Report? /think"
    assert prompt[0]["content"][1]["text"] == "Report?"  # the input row is not modified
    assert row["messages"][1]["content"][0]["text"].startswith("<think>\n")
    assert row["images"] == ["IMG"] and row["id"] == "r1"


def test_mixing_ratio():
    primary = Dataset.from_dict({"x": [f"p{i}" for i in range(10)]})
    secondary = Dataset.from_dict({"x": [f"s{i}" for i in range(50)]})
    mixed = mix_datasets(primary, secondary, 0.5, seed=1)
    assert len(mixed) == 15
    assert sum(x.startswith("s") for x in mixed["x"]) == 5
    assert set(primary["x"]) <= set(mixed["x"])
    assert mixed["x"] == mix_datasets(primary, secondary, 0.5, seed=1)["x"]  # deterministic
    assert len(mix_datasets(primary, secondary, 0.0)) == 10
    with pytest.raises(ValueError, match="only 50"):
        mix_datasets(primary, secondary, 6.0)


def run_script(monkeypatch, script: str, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", [script, *map(str, args)])
    runpy.run_path(str(REPO_ROOT / script), run_name="__main__")


@pytest.mark.slow
def test_tiny_generation_resume_and_cold_start_sft(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    out = tmp_path / "cold"
    args = [
        "--teacher_model", tiny_model_dir, "--backend", "transformers", "--answer_mode", "append",
        "--dataset_name", synthetic_dir / "grpo", "--output_dir", out, "--max_samples", "6",
        "--max_new_tokens", "24", "--batch_size", "4", "--min_reasoning_chars", "1", "--temperature", "1.0",
    ]  # fmt: skip
    run_script(monkeypatch, "scripts/generate_cold_start.py", *args)
    generations = (out / "teacher_generations.jsonl").read_text().splitlines()
    assert len(generations) == 6
    stats = json.loads((out / "stats.json").read_text())
    assert stats["rows"] == 6 and stats["kept"] + sum(stats["rejected"].values()) == 6
    traces = load_from_disk(out / "dataset")["train"]
    assert len(traces) == stats["kept"] > 0
    for messages in traces["messages"]:
        assert messages[0]["content"][-1]["text"].endswith(" /think")
        assert "</think>" in messages[1]["content"][0]["text"]

    # Resume: drop the last two generations (as if the run had crashed); only those two are generated again.
    (out / "teacher_generations.jsonl").write_text("\n".join(generations[:4]) + "\n")
    run_script(monkeypatch, "scripts/generate_cold_start.py", *args)
    regenerated = (out / "teacher_generations.jsonl").read_text().splitlines()
    assert regenerated[:4] == generations[:4] and len(regenerated) == 6

    sft_out = tmp_path / "cold-sft"
    run_script(
        monkeypatch, "scripts/sft.py", REPO_ROOT / "recipes/demo/cold_start.yaml",
        "--model_name_or_path", tiny_model_dir, "--dataset_name", out / "dataset",
        "--mix_dataset_name", synthetic_dir / "sft", "--output_dir", sft_out,
        "--max_steps", "2", "--per_device_train_batch_size", "4", "--save_strategy", "no",
    )  # fmt: skip
    state = json.loads((sft_out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    results = json.loads((sft_out / "all_results.json").read_text())
    assert results["train_samples"] == 2 * len(traces)  # traces + as many direct answers (mix_ratio 1.0)
    card = ModelCard.load(sft_out / "README.md")
    assert "cold_start" in card.data.tags and "/think" in card.text


def test_public_push_of_credentialed_traces_is_refused_before_generation():
    from radvlm_grpo.publishing.hub import CredentialedDataError

    arguments = runpy.run_path(str(REPO_ROOT / "scripts/generate_cold_start.py"))["ColdStartArguments"]
    common = dict(dataset_name="d", output_dir="o", push_to_hub="me/traces", hub_public=True)
    with pytest.raises(CredentialedDataError, match="unknown sources"):
        arguments(**common)
    with pytest.raises(CredentialedDataError, match="mimic-cxr"):
        arguments(**common, sources=["mimic-cxr"])
    assert arguments(**common, sources=["synthetic"]).hub_public
    assert arguments(**common, allow_public_credentialed=True).hub_public
