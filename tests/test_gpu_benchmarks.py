"""The GPU reward benchmarks run their code paths on the CPU at toy sizes (what they measure needs the GPU).

``benchmarks/reward_throughput.py`` (ours vs the per-pair way, the ceiling, time outside the encoders, scorer_dtype
agreement), ``benchmarks/gpu/grpo_reward_step.py`` (the radcliq reward inside GRPO steps of scripts/grpo.py) and
``benchmarks/gpu/reward_gpu_check.sh`` (the one script the GPU machine runs, in its DRY=1 CPU mode).
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def load(relative: str):
    spec = importlib.util.spec_from_file_location(Path(relative).stem, REPO_ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def throughput():
    return load("benchmarks/reward_throughput.py")


def test_within_group_spearman(throughput):
    exact = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0, 1.0, 2.0, 3.0, 4.0])
    other = np.array([1.1, 2.1, 3.1, 4.1, 7.0, 7.0, 7.0, 7.0, 4.0, 3.0, 2.0, 1.0])
    np.testing.assert_allclose(throughput.within_group_spearman(other, exact, 4), [1.0, 1.0, -1.0])
    swapped = np.array([2.0, 1.0, 3.0, 4.0])
    assert throughput.within_group_spearman(swapped, exact[:4], 4)[0] == pytest.approx(0.8)
    assert np.isnan(throughput.within_group_spearman(np.array([1.0, 1.0]), np.array([1.0, 2.0]), 2)[0])


def test_reward_throughput_prints_its_figures(throughput, capsys):
    throughput.main(
        ["--tiny", "--prompts", "2", "--generations", "4", "--baseline-pairs", "2", "--threads", "1"]
        + ["--dtypes", "float32,tf32,bfloat16,bfloat16+radgraph", "--profile"]
    )
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert re.fullmatch(r"speedup: \d+\.\d\d ceiling: \d+\.\d\d", lines[-1]), lines[-1]
    difference = float(re.search(r"max \|RadCliQ ours - authors' way\| on those pairs: (\S+)", out).group(1))
    assert difference < 1e-5
    inside, outside = map(
        float, re.search(r"ours' time: (\S+) s inside the three encoders, (\S+) s outside", out).groups()
    )
    assert inside > 0 and outside > 0
    assert "aten::" in out  # the profiler table
    for dtype in ("tf32", "bfloat16", "bfloat16+radgraph"):
        match = re.search(rf"scorer_dtype {re.escape(dtype)}: \S+ pairs/s .*max \|delta RadCliQ\| (\S+); "
                          r"within-group Spearman min (\S+) mean (\S+) over 2 groups of 4", out)  # fmt: skip
        assert match, dtype
        delta, low, mean = map(float, match.groups())
        assert -1 <= low <= mean <= 1 and delta >= 0
        if dtype == "tf32":  # a CUDA mode: float32 on a CPU
            assert delta == 0 and low == 1
        else:
            assert delta > 0, f"{dtype} changed nothing"
    with pytest.raises(SystemExit):
        throughput.main(["--tiny", "--dtypes", "float16"])


@pytest.mark.slow
def test_grpo_reward_step_records_the_reward_inside_steps(tmp_path, tiny_model_dir, synthetic_dir):
    step = load("benchmarks/gpu/grpo_reward_step.py")
    out = tmp_path / "step.json"
    record = step.main(
        ["--scorers", str(tmp_path / "scorers"), "--json", str(out), "--tiny-scorers"]
        + [str(REPO_ROOT / "recipes/demo/grpo_report.yaml"), "--model_name_or_path", str(tiny_model_dir)]
        + ["--dataset_name", str(synthetic_dir / "grpo"), "--output_dir", str(tmp_path / "run")]
        + ["--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2", "--num_generations", "4"]
        + ["--max_completion_length", "8", "--max_steps", "3", "--save_strategy", "no", "--report_to", "none"]
        + ["--logging_steps", "1"]
    )
    assert json.loads(out.read_text()) == json.loads(json.dumps(record)) and record["ok"]
    assert [s["step"] for s in record["steps"]] == [1, 2, 3]
    # One reward call per optimizer step, on the whole generation batch (2 prompts x 4 completions).
    assert [(c["step"], c["pairs"]) for c in record["reward_calls"]] == [(1, 8), (2, 8), (3, 8)]
    summary = record["summary"]
    assert summary["steps_counted"] == [2, 3] and 0 < summary["reward_share"] < 1
    assert summary["scorer_resident_gib"] is None  # GPU memory figures: on a GPU only
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    rewards = [log["rewards/radcliq/mean"] for log in state["log_history"] if "rewards/radcliq/mean" in log]
    assert len(rewards) == 3 and all(np.isfinite(rewards))


@pytest.mark.slow
def test_reward_gpu_check_dry_run(tmp_path):
    env = {**os.environ, "DRY": "1", "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work")}
    env.update(PY=str(Path(sys.executable)), OMP_NUM_THREADS="1", BUDGET="600")
    run = subprocess.run(
        ["bash", "benchmarks/gpu/reward_gpu_check.sh"], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = tmp_path / "out"
    phases = (out / "phases.txt").read_text()
    for name in ("goldens", "throughput", "build_tiny", "build_data", "grpo_step"):
        assert f"phase {name} rc=0" in phases, phases
    summary = (out / "summary.txt").read_text()
    assert "skipped" in (out / "goldens_cuda.txt").read_text()  # no CUDA here
    assert re.search(r"^speedup: \S+ ceiling: \S+$", summary, re.M) and "scorer_dtype bfloat16:" in summary
    assert json.loads((out / "grpo_reward_step.json").read_text())["ok"]


@pytest.mark.slow
def test_the_grpo_step_benchmark_leaves_the_callers_process_as_it_found_it(tmp_path, tiny_model_dir, synthetic_dir):
    """A SIGTERM handler left behind makes later forked workers (datasets' num_proc pools) unkillable."""
    import signal

    import trl

    before = (signal.getsignal(signal.SIGTERM), trl.GRPOTrainer.__init__, list(sys.argv))
    load("benchmarks/gpu/grpo_reward_step.py").main(
        ["--scorers", str(tmp_path / "scorers"), "--json", str(tmp_path / "step.json"), "--tiny-scorers"]
        + [str(REPO_ROOT / "recipes/demo/grpo_report.yaml"), "--model_name_or_path", str(tiny_model_dir)]
        + ["--dataset_name", str(synthetic_dir / "grpo"), "--output_dir", str(tmp_path / "run")]
        + ["--per_device_train_batch_size", "4", "--num_generations", "4", "--max_completion_length", "4"]
        + ["--max_steps", "1", "--save_strategy", "no", "--report_to", "none"]
    )
    assert (signal.getsignal(signal.SIGTERM), trl.GRPOTrainer.__init__, list(sys.argv)) == before
