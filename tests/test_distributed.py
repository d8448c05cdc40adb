"""The paper's distributed path: SFT and GRPO under DeepSpeed ZeRO-3 with 2 processes (CPU, gloo).

Each run is ``accelerate launch --config_file recipes/accelerate_configs/zero3.yaml --num_processes 2
--mixed_precision no`` of the unchanged script on the tiny model and synthetic data, through
``tests/distributed_entry.py`` (which only turns off DeepSpeed's CPU shared-memory op, a JIT-compiled speed-up of
all-reduce). The saved model must reload with the Auto classes holding exactly the gathered weights, and a GRPO run
must resume from its ZeRO-3 checkpoint.

FSDP is not tested: accelerate on a CPU runs ``distributed_type: FSDP`` without sharding (it falls back to plain
DDP), so a CPU test would not exercise FSDP at all.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import tiny_grpo_args
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor

REPO_ROOT = Path(__file__).resolve().parents[1]
ZERO3 = REPO_ROOT / "recipes/accelerate_configs/zero3.yaml"
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(script: str, *args: str) -> subprocess.CompletedProcess:
    """``accelerate launch`` of ``script`` under ZeRO-3 with 2 CPU processes; fails the test on a non-zero exit."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ZERO3),
        "--num_processes", "2",
        "--mixed_precision", "no",
        "--main_process_port", str(_free_port()),
        str(REPO_ROOT / "tests/distributed_entry.py"), script, *map(str, args),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT / "src")}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-4000:])
    return result


def saved_name(name: str, saved: dict) -> str:
    """The key of a model parameter in a ZeRO-3 save: DeepSpeed's gathered state dict names the language model
    ``model.language_model.model.*`` (the pre-transformers-5 layout, which ``from_pretrained`` renames back)."""
    if name in saved:
        return name
    return name.replace("model.language_model.", "model.language_model.model.", 1)


def assert_reloads_as_saved(output_dir: Path, start_dir: Path) -> None:
    """The save reloads with the Auto classes, every weight is the saved one, and training changed the weights."""
    model, info = AutoModelForImageTextToText.from_pretrained(output_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    AutoProcessor.from_pretrained(output_dir)
    saved = load_file(output_dir / "model.safetensors")
    assert all(v.numel() > 0 for v in saved.values()), "a ZeRO-3 shard was saved instead of the gathered tensor"
    state = model.state_dict()
    tied = {"lm_head.weight"} if model.config.get_text_config().tie_word_embeddings else set()
    assert set(state) - tied == {n for n in state if saved_name(n, saved) in saved}, "parameters missing from the save"
    for name, tensor in state.items():
        if name not in tied:
            assert torch.equal(tensor, saved[saved_name(name, saved)]), f"{name} did not reload as saved"
    start = load_file(start_dir / "model.safetensors")
    changed = [n for n in start if not torch.equal(start[n], saved[saved_name(n, saved)])]
    assert len(changed) > len(start) // 2, f"only {len(changed)} of {len(start)} tensors changed"


def test_sft_zero3_two_processes(tmp_path, tiny_model_dir, synthetic_dir):
    out = tmp_path / "sft"
    launch(
        "scripts/sft.py", REPO_ROOT / "recipes/demo/sft.yaml",
        "--model_name_or_path", tiny_model_dir,
        "--dataset_name", synthetic_dir / "sft",
        "--output_dir", out,
        "--max_steps", "2",
        "--per_device_train_batch_size", "2",
        "--logging_steps", "1",
        "--save_steps", "2",
        "--report_to", "none",
    )  # fmt: skip
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2 and len([log for log in state["log_history"] if "loss" in log]) == 2
    assert json.loads((out / "all_results.json").read_text())["world_size"] == 2
    assert (out / "checkpoint-2" / "global_step2").is_dir(), "no DeepSpeed checkpoint was written"
    assert_reloads_as_saved(out, tiny_model_dir)


def test_grpo_zero3_two_processes_saves_and_resumes(tmp_path, tiny_model_dir, synthetic_dir):
    out = tmp_path / "grpo"
    extra = ["--learning_rate", "0.01", "--save_steps", "2", "--report_to", "none"]
    launch("scripts/grpo.py", *tiny_grpo_args("grpo_grounding.yaml", tiny_model_dir, synthetic_dir, out, 2), *extra)
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert json.loads((out / "all_results.json").read_text())["world_size"] == 2
    assert [log["step"] for log in state["log_history"] if "rewards/soft_f1/mean" in log] == [1, 2]
    assert (out / "checkpoint-2" / "global_step2").is_dir(), "no DeepSpeed checkpoint was written"
    assert_reloads_as_saved(out, tiny_model_dir)

    # Two more steps from the ZeRO-3 checkpoint: DeepSpeed reloads its sharded model and optimizer states.
    resumed = launch(
        "scripts/grpo.py", *tiny_grpo_args("grpo_grounding.yaml", tiny_model_dir, synthetic_dir, out, 4), *extra
    )
    assert f"Resuming training from {out / 'checkpoint-2'}" in resumed.stdout + resumed.stderr
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert [log["step"] for log in state["log_history"] if "rewards/soft_f1/mean" in log] == [1, 2, 3, 4]
    assert (out / "checkpoint-4" / "global_step4").is_dir()
    assert_reloads_as_saved(out, tiny_model_dir)
