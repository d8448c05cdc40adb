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
