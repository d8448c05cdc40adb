"""Shared fixtures: everything offline, one thread, and the tiny model and synthetic data built once per session."""

import os

for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_EVALUATE_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_name, _value)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _single_thread():
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from radvlm_grpo.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-qwen3-vl"))


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """Small synthetic splits in both schemas, saved as the demo saves them (OUT/sft and OUT/grpo)."""
    from radvlm_grpo.data.synthetic import main as synthetic_main

    out = tmp_path_factory.mktemp("synthetic")
    synthetic_main([str(out), "--schema", "both", "--train-size", "48", "--validation-size", "8", "--test-size", "8"])
    return out


def tiny_grpo_args(
    recipe: str, model_dir: Path, data_dir: Path, output_dir: Path, max_steps: int, batch_size: int = 4
) -> list[str]:
    """``scripts/grpo.py`` arguments shared by the GRPO wiring tests: a demo recipe shrunk to seconds on the tiny model,
    one generation round per step so that every step logs its rewards."""
    return [
        str(REPO_ROOT / "recipes/demo" / recipe),
        "--model_name_or_path", str(model_dir),
        "--dataset_name", str(data_dir / "grpo"),
        "--output_dir", str(output_dir),
        "--max_steps", str(max_steps),
        "--per_device_train_batch_size", str(batch_size),
        "--num_generations", "4",
        "--max_completion_length", "12",
        "--steps_per_generation", "1",
        "--logging_steps", "1",
    ]  # fmt: skip


GROUNDING_SUBJECT = "right lung"
GROUNDING_ANSWER = "The right lung is located at the coordinates [0.12, 0.2, 0.45, 0.85] on the image."


@pytest.fixture(scope="session")
def xray_png(tmp_path_factory) -> Path:
    """One synthetic chest X-ray (128 x 128) as a PNG file."""
    import numpy as np

    from radvlm_grpo.data.synthetic import SyntheticConfig, make_scene, to_pil

    path = tmp_path_factory.mktemp("xray") / "cxr.png"
    to_pil(make_scene(np.random.default_rng(0), SyntheticConfig()).image).save(path)
    return path


@pytest.fixture(scope="session")
def grounding_model_dir(tiny_model_dir, xray_png, tmp_path_factory) -> Path:
    """The tiny model taught one answer with boxes (60 steps on one example, about 2 s): asked where the right lung
    is on ``xray_png``, it answers ``GROUNDING_ANSWER`` (the random tiny model answers with no box)."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from radvlm_grpo.models.inference import build_question
    from radvlm_grpo.vocab.schema import assistant_turn, user_turn

    torch.manual_seed(0)
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    question = build_question("anatomical_grounding", GROUNDING_SUBJECT)
    text = processor.apply_chat_template([user_turn(question), assistant_turn(GROUNDING_ANSWER)])
    batch = processor(text=[text], images=[Image.open(xray_png).convert("RGB")], return_tensors="pt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        model(**batch, labels=batch["input_ids"]).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    out = tmp_path_factory.mktemp("grounding-model")
    model.eval().save_pretrained(out)
    processor.save_pretrained(out)
    return out
