"""slurm/train.slurm with stand-ins for scontrol, srun, accelerate and trl: the command lines it would launch."""

import os
import stat
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

FAKES = {
    "scontrol": 'printf "%s\\n" node-a node-b node-c\n',
    # srun runs its command once, as task 0, after logging how it was called.
    "srun": 'echo "srun $*" >> "$CALLS"\nwhile [[ "$1" == --* ]]; do shift; done\nSLURM_PROCID=0 "$@"\n',
    "accelerate": 'echo "accelerate $*" >> "$CALLS"\n',
    "trl": 'echo "trl $*" >> "$CALLS"\n',
}


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    calls = tmp_path / "calls.txt"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls), "SLURM_JOB_NODELIST": "x"}
    return env, calls


def launch(env, *args, **extra_env) -> list[str]:
    command = ["bash", "slurm/train.slurm", *args]
    result = subprocess.run(command, cwd=REPO_ROOT, env={**env, **extra_env}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return Path(env["CALLS"]).read_text().splitlines()


def test_colocate_trains_on_every_node(fake_slurm):
    env, _ = fake_slurm
    calls = launch(env, "scripts/grpo.py", "recipes/radvlm/grpo.yaml", "recipes/accelerate_configs/zero3.yaml")
    accelerate = [c for c in calls if c.startswith("accelerate")]
    assert len(accelerate) == 1 and not any(c.startswith("trl") for c in calls)
    assert "--num_machines 3 --num_processes 24 --machine_rank 0 --main_process_ip node-a" in accelerate[0]
    assert accelerate[0].endswith("scripts/grpo.py recipes/radvlm/grpo.yaml")


def test_server_mode_reserves_the_last_node_for_vllm(fake_slurm):
    env, _ = fake_slurm
    calls = launch(
        env, "scripts/grpo.py", "recipes/radvlm/grpo.yaml", "recipes/accelerate_configs/zero3.yaml",
        "--max_steps", "10", VLLM_MODE="server",
    )  # fmt: skip
    serve = [c for c in calls if c.startswith("trl")]
    assert serve == [
        "trl vllm-serve --model data/RadVLM-Qwen3-VL-8B --revision main --data_parallel_size 8 --port 8000"
    ]
    assert any(c.startswith("srun") and "--nodelist=node-c" in c for c in calls)
    accelerate = next(c for c in calls if c.startswith("accelerate"))
    assert "--num_machines 2 --num_processes 16" in accelerate
    assert accelerate.endswith("--max_steps 10 --vllm_mode server --vllm_server_host node-c --vllm_server_port 8000")


def test_sft_recipe_ignores_vllm_mode(fake_slurm):
    env, _ = fake_slurm
    calls = launch(
        env, "scripts/sft.py", "recipes/radvlm/sft.yaml", "recipes/accelerate_configs/zero3.yaml", VLLM_MODE="server"
    )
    assert not any(c.startswith("trl") for c in calls)
    assert "--num_machines 3" in next(c for c in calls if c.startswith("accelerate"))
