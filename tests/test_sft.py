"""scripts/sft.py end to end on the tiny model: it trains, saves what users load, writes a card, and resumes."""

import json
import math
import runpy
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run_sft(monkeypatch, *args: str) -> None:
    """Run the script as `python scripts/sft.py ...` does, in this process (imports cost ~6 s per process)."""
    monkeypatch.setattr(sys, "argv", ["scripts/sft.py", *args])
    runpy.run_path(str(REPO_ROOT / "scripts/sft.py"), run_name="__main__")


def demo_args(model_dir: Path, data_dir: Path, output_dir: Path, max_steps: int) -> list[str]:
    return [
        str(REPO_ROOT / "recipes/demo/sft.yaml"),
        "--model_name_or_path", str(model_dir),
        "--dataset_name", str(data_dir / "sft"),
        "--output_dir", str(output_dir),
        "--max_steps", str(max_steps),
        "--per_device_train_batch_size", "4",
        "--logging_steps", "1",
        "--save_steps", "1",
        "--save_total_limit", "2",
    ]  # fmt: skip


def test_sft_trains_saves_and_resumes(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    output_dir = tmp_path / "sft"
    run_sft(monkeypatch, *demo_args(tiny_model_dir, synthetic_dir, output_dir, max_steps=3))

    state = json.loads((output_dir / "trainer_state.json").read_text())
    losses = [log["loss"] for log in state["log_history"] if "loss" in log]
    assert state["global_step"] == 3 and len(losses) == 3
    assert all(math.isfinite(loss) for loss in losses)

    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(output_dir / "model.safetensors")
    changed = [name for name in before if not torch.equal(before[name], after[name])]
    assert len(changed) > len(before) // 2, f"only {len(changed)} of {len(before)} tensors changed"
    assert any("visual" in name for name in changed), "the vision tower is trained too (full fine-tune)"

    # What users load: model and processor with the Auto classes, and an image-text-to-text card.
    AutoModelForImageTextToText.from_pretrained(output_dir)
    AutoProcessor.from_pretrained(output_dir)
    card = ModelCard.load(output_dir / "README.md")
    assert card.data.pipeline_tag == "image-text-to-text"
    assert "sft" in card.data.tags
    assert "recipes/demo/sft.yaml" in card.text and "--max_steps 3" in card.text

    # Resume: mark the last checkpoint's history; a resumed run carries the mark on and continues at step 4.
    checkpoint_state = output_dir / "checkpoint-3" / "trainer_state.json"
    marked = json.loads(checkpoint_state.read_text())
    marked["log_history"][0]["resume_marker"] = True
    checkpoint_state.write_text(json.dumps(marked))
    run_sft(monkeypatch, *demo_args(tiny_model_dir, synthetic_dir, output_dir, max_steps=5))
    state = json.loads((output_dir / "trainer_state.json").read_text())
    assert state["global_step"] == 5
    assert state["log_history"][0].get("resume_marker") is True
    assert [log["step"] for log in state["log_history"] if "loss" in log] == [1, 2, 3, 4, 5]


def test_sft_fails_early_on_missing_inputs(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    with pytest.raises(FileNotFoundError, match="radvlm_grpo.models.tiny"):
        run_sft(monkeypatch, *demo_args(tmp_path / "missing/model/dir", synthetic_dir, tmp_path / "o", 1))
    # GRPO-schema data handed to SFT: a clear error naming the missing columns.
    args = demo_args(tiny_model_dir, synthetic_dir, tmp_path / "o", 1)
    args[args.index("--dataset_name") + 1] = str(synthetic_dir / "grpo")
    with pytest.raises(ValueError, match="messages"):
        run_sft(monkeypatch, *args)
