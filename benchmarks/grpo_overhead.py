"""What scripts/grpo.py costs over a bare TRL GRPO script with the same settings, on the tiny model.

Both run as separate processes, alternating, on the same tiny model, synthetic grounding data and soft-F1 reward.
The figure compared is the time per training step (TRL's ``train_runtime`` / steps); process wall time is printed
beside it. Usage:

    OMP_NUM_THREADS=1 python benchmarks/grpo_overhead.py [--repeats 4] [--max_steps 10]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

SETTINGS = {
    "per_device_train_batch_size": 8,
    "num_generations": 8,
    "max_completion_length": 32,
    "learning_rate": 5e-5,
    "beta": 0.01,
    "epsilon": 0.2,
    "epsilon_high": 0.28,
    "loss_type": "dapo",
    "lr_scheduler_type": "constant",
    "weight_decay": 0.01,
    "logging_steps": 1,
    "seed": 42,
}
TASKS = ["anatomical_grounding", "abnormality_grounding", "phrase_grounding"]


def bare_trl(model_dir: str, data_dir: str, output_dir: str, max_steps: int) -> None:
    """A plain TRL GRPO script: load, filter to grounding, train. No recipe parsing, cards or prompt edits."""
    from datasets import load_from_disk
    from trl import GRPOConfig, GRPOTrainer

    from radvlm_grpo.rewards import get_reward_funcs

    dataset = load_from_disk(data_dir)["train"].filter(lambda task: task in TASKS, input_columns="task")
    args = GRPOConfig(
        output_dir=output_dir,
        max_steps=max_steps,
        use_cpu=True,
        bf16=False,
        gradient_checkpointing=False,
        save_strategy="no",
        report_to="none",
        **SETTINGS,
    )
    trainer = GRPOTrainer(
        model=model_dir, reward_funcs=get_reward_funcs(["soft_f1"]), args=args, train_dataset=dataset
    )
    result = trainer.train()
    trainer.save_state()
    Path(output_dir, "all_results.json").write_text(json.dumps(result.metrics))


def ours(model_dir: str, data_dir: str, output_dir: str, max_steps: int) -> list[str]:
    args = [sys.executable, "scripts/grpo.py", "recipes/demo/grpo_grounding.yaml"]
    args += ["--model_name_or_path", model_dir, "--dataset_name", data_dir, "--output_dir", output_dir]
    args += ["--max_steps", str(max_steps), "--save_strategy", "no"]
    for key, value in SETTINGS.items():
        args += [f"--{key}", str(value)]
    return args


def timed(command: list[str], output_dir: str, max_steps: int) -> tuple[float, float]:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
    wall = time.perf_counter() - start
    runtime = json.loads(Path(output_dir, "all_results.json").read_text())["train_runtime"]
    return float(runtime) / max_steps, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=4, help="Runs of each; even, so the ABBA order balances.")
    parser.add_argument("--max_steps", type=int, default=10)
    parser.add_argument("--bare", nargs=3, metavar=("MODEL", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_trl(*args.bare, max_steps=args.max_steps)
        return

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        model_dir, data_dir = f"{tmp}/tiny", f"{tmp}/synthetic"
        subprocess.run([sys.executable, "-m", "radvlm_grpo.models.tiny", model_dir], check=True, capture_output=True)
        subprocess.run(
            [sys.executable, "-m", "radvlm_grpo.data.synthetic", data_dir, "--schema", "grpo", "--train-size", "400"],
            check=True,
            capture_output=True,
        )
        results = {"ours": [], "bare": []}
        for repeat in range(args.repeats):  # alternate, ABBA, so drift and order effects hit both alike
            for name in ("bare", "ours") if repeat % 2 == 0 else ("ours", "bare"):
                out = f"{tmp}/{name}-{repeat}"
                command = (
                    ours(model_dir, data_dir, out, args.max_steps)
                    if name == "ours"
                    else [
                        sys.executable,
                        __file__,
                        "--max_steps",
                        str(args.max_steps),
                        "--bare",
                        model_dir,
                        data_dir,
                        out,
                    ]
                )
                results[name].append(timed(command, out, args.max_steps))

    print(f"{'':24}{'bare TRL':>12}{'scripts/grpo.py':>18}")
    step = {name: statistics.median(r[0] for r in runs) for name, runs in results.items()}
    wall = {name: statistics.median(r[1] for r in runs) for name, runs in results.items()}
    print(f"{'seconds per step':24}{step['bare']:12.3f}{step['ours']:18.3f}")
    print(f"{'process wall (s)':24}{wall['bare']:12.1f}{wall['ours']:18.1f}")
    print(f"{'wall ratio':24}{wall['ours'] / wall['bare']:30.3f}")
    print(f"overhead_ratio: {step['ours'] / step['bare']:.3f}")


if __name__ == "__main__":
    main()
