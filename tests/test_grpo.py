"""scripts/grpo.py end to end on the tiny model: rewards are logged, weights move, two processes run, resume works."""

import json
import math
import os
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import tiny_grpo_args
from safetensors.torch import load_file

REPO_ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def grpo_args(recipe: str, model_dir: Path, data_dir: Path, output_dir: Path, max_steps: int, *extra: str) -> list:
    shared = tiny_grpo_args(recipe, model_dir, data_dir, output_dir, max_steps)
    return [*shared, "--learning_rate", "0.01", "--save_strategy", "no", *extra]


def run_grpo(monkeypatch, args: list) -> dict:
    monkeypatch.setattr(sys, "argv", ["scripts/grpo.py", *map(str, args)])
    runpy.run_path(str(REPO_ROOT / "scripts/grpo.py"), run_name="__main__")
    return json.loads((Path(args[args.index("--output_dir") + 1]) / "trainer_state.json").read_text())


def changed_tensors(before_dir: Path, after_dir: Path) -> list[str]:
    before, after = load_file(before_dir / "model.safetensors"), load_file(after_dir / "model.safetensors")
    return [name for name in before if not torch.equal(before[name], after[name])]


def rewards_logged(state: dict, name: str) -> list[float]:
    return [log[f"rewards/{name}/mean"] for log in state["log_history"] if f"rewards/{name}/mean" in log]


def test_grounding_with_soft_f1(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    out = tmp_path / "grounding"
    state = run_grpo(monkeypatch, grpo_args("grpo_grounding.yaml", tiny_model_dir, synthetic_dir, out, 2))
    rewards = rewards_logged(state, "soft_f1")
    assert len(rewards) == 2 and all(0.0 <= r <= 1.0 for r in rewards)
    # Validation is off unless the recipe asks for it: nothing generated, nothing logged.
    assert not any(key.startswith("validation/") for log in state["log_history"] for key in log)
    assert changed_tensors(tiny_model_dir, out), "no parameter changed"
    assert (out / "README.md").is_file() and "soft_f1" in (out / "README.md").read_text()


@pytest.mark.parametrize("thinking", [False, True], ids=["plain", "thinking"])
def test_report_with_gleu(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir, thinking):
    out = tmp_path / f"report-{thinking}"
    extra = ("--thinking", "true", "--think_suffix", "true") if thinking else ()
    state = run_grpo(monkeypatch, grpo_args("grpo_report.yaml", tiny_model_dir, synthetic_dir, out, 2, *extra))
    rewards = rewards_logged(state, "gleu")
    assert len(rewards) == 2 and all(math.isfinite(r) for r in rewards)
    if thinking:  # a random model never closes </think>: every completion gets the thinking penalty (0 for GLEU)
        assert rewards == [0.0, 0.0]
    assert changed_tensors(tiny_model_dir, out)


def test_unknown_reward_fails_before_loading(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    args = grpo_args("grpo_report.yaml", tiny_model_dir, synthetic_dir, tmp_path / "x", 1, "--reward_funcs", "gleuu")
    with pytest.raises(ValueError, match="Unknown reward 'gleuu'"):
        run_grpo(monkeypatch, args)
    # The clinical reward's scorer weights are not cached here (offline): a clear error names the file and its repo.
    args = grpo_args("grpo_report.yaml", tiny_model_dir, synthetic_dir, tmp_path / "x", 1, "--reward_funcs", "radcliq")
    with pytest.raises(FileNotFoundError, match="StanfordAIMI/RRG_scorers"):
        run_grpo(monkeypatch, args)
    assert not (tmp_path / "x").exists()


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT / "src")}


def test_two_processes_with_torchrun(tmp_path, tiny_model_dir, synthetic_dir):
    # accelerate's --cpu with --num_processes 2 silently runs one process; torchrun starts two (gloo).
    out = tmp_path / "ddp"
    args = grpo_args(
        "grpo_grounding.yaml", tiny_model_dir, synthetic_dir, out, 2, "--per_device_train_batch_size", "2"
    )
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "scripts/grpo.py",
        *map(str, args),
    ]
    result = subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert json.loads((out / "all_results.json").read_text())["world_size"] == 2


def test_killed_run_resumes(tmp_path, tiny_model_dir, synthetic_dir):
    out = tmp_path / "resume"
    args = grpo_args("grpo_grounding.yaml", tiny_model_dir, synthetic_dir, out, 6)
    args[args.index("--save_strategy") + 1] = "steps"
    args += ["--save_steps", "2", "--save_total_limit", "5"]
    command = [sys.executable, "scripts/grpo.py", *map(str, args)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not (out / "checkpoint-2" / "trainer_state.json").exists():
        assert process.poll() is None, process.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "no checkpoint within 300 s"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (out / "trainer_state.json").exists(), "the first run finished before it was killed"
    # The killed run's card is the project's, saying the run did not finish, with its recipe, model and data.
    card = (out / "README.md").read_text()
    assert "Training in progress, or stopped before it finished" in card and "fine-tuned version of" not in card
    assert "recipes/demo/grpo_grounding.yaml" in card and str(tiny_model_dir) in card and "soft_f1" in card
    # A save cut off by the kill leaves a newer folder without trainer_state.json; the resume must skip it.
    (out / "checkpoint-5").mkdir(exist_ok=True)
    (out / "checkpoint-5" / "model.safetensors").write_bytes(b"partial")

    result = subprocess.run(command, cwd=REPO_ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Resuming training from" in result.stdout
    # A log file, not a terminal: no cursor-up escapes of nested progress bars, no deprecation warnings.
    log = result.stdout + result.stderr
    assert "\x1b[A" not in log, "a progress bar nested under the training bar"
    assert "is deprecated" not in log and "FutureWarning" not in log
    assert "Training in progress" not in (out / "README.md").read_text(), "the finished run's card replaces it"
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    steps = [log["step"] for log in state["log_history"] if "rewards/soft_f1/mean" in log]
    assert steps == sorted(set(steps)) and steps[-1] == 6


def test_dataset_without_a_reward_column_fails_before_training(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    from datasets import load_from_disk

    broken = tmp_path / "no-boxes"
    load_from_disk(synthetic_dir / "grpo").remove_columns("boxes").save_to_disk(broken / "grpo")
    args = grpo_args("grpo_grounding.yaml", tiny_model_dir, broken, tmp_path / "x", 1)
    with pytest.raises(ValueError, match=r"\['boxes'\]"):
        run_grpo(monkeypatch, args)
    assert not (tmp_path / "x").exists(), "nothing was trained or written"
