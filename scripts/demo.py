"""The whole pipeline on the built-in tiny model and synthetic chest X-rays, on CPU, with no downloads.

Usage:
    make demo                     # = python scripts/demo.py --output_dir data --seed 42
    python scripts/demo.py --output_dir /tmp/demo --seed 1

Each stage runs as its own process through the same entry points a user runs on real data.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def run(step: str, command: list[str]) -> float:
    """Run one stage, streaming its output; stop the demo with the stage's name if it fails."""
    print(f"\n=== demo: {step}\n$ {' '.join(command)}", flush=True)
    start = time.perf_counter()
    result = subprocess.run(command, cwd=REPO_ROOT)
    if result.returncode != 0:
        sys.exit(f"demo: step '{step}' failed with exit code {result.returncode}")
    return time.perf_counter() - start


def logged(output_dir: Path, key: str) -> list[float]:
    """Every value of ``key`` in a run's log history (empty when the run logged none)."""
    state = output_dir / "trainer_state.json"
    if not state.is_file():
        return []
    return [log[key] for log in json.loads(state.read_text())["log_history"] if key in log]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="data", help="Folder for the model, data and checkpoints.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the tiny model, the data and training.")
    parser.add_argument(
        "--thinking", action="store_true", help="Also run the cold-start branch: traces from the SFT model, then SFT."
    )
    args = parser.parse_args()
    out = Path(args.output_dir).resolve()
    model_dir, data_dir, sft_dir = out / "tiny-qwen3-vl", out / "synthetic", out / "demo-sft"
    grpo_dirs = {"grounding": out / "demo-grpo-grounding", "report": out / "demo-grpo-report"}
    cold_start_dir, cold_start_sft_dir = out / "demo-cold-start", out / "demo-cold-start-sft"
    python = sys.executable
    timings = {}

    timings["tiny model"] = run(
        "build the tiny Qwen3-VL", [python, "-m", "radvlm_grpo.tiny", str(model_dir), "--seed", str(args.seed)]
    )
    timings["synthetic data"] = run(
        "build synthetic CXR data",
        [python, "-m", "radvlm_grpo.data.synthetic", str(data_dir), "--schema", "both", "--seed", str(args.seed)],
    )
    for folder in (sft_dir, *grpo_dirs.values(), cold_start_dir, cold_start_sft_dir):
        if folder.exists():  # a demo starts fresh; a user's run resumes from its last checkpoint instead
            shutil.rmtree(folder)
    timings["sft"] = run(
        "SFT",
        [
            python,
            "scripts/sft.py",
            "recipes/demo/sft.yaml",
            "--model_name_or_path",
            str(model_dir),
            "--dataset_name",
            str(data_dir / "sft"),
            "--output_dir",
            str(sft_dir),
            "--seed",
            str(args.seed),
        ],
    )

    for task, grpo_dir in grpo_dirs.items():
        timings[f"grpo {task}"] = run(
            f"GRPO ({task})",
            [
                python,
                "scripts/grpo.py",
                f"recipes/demo/grpo_{task}.yaml",
                "--model_name_or_path",
                str(sft_dir),
                "--dataset_name",
                str(data_dir / "grpo"),
                "--output_dir",
                str(grpo_dir),
                "--seed",
                str(args.seed),
            ],
        )

    if args.thinking:
        timings["cold-start traces"] = run(
            "cold-start traces (the SFT model as its own teacher)",
            [
                python, "scripts/generate_cold_start.py", "--teacher_model", str(sft_dir), "--backend", "transformers",
                "--answer_mode", "append", "--dataset_name", str(data_dir / "grpo"), "--output_dir", str(cold_start_dir),
                "--max_samples", "96", "--max_new_tokens", "48", "--batch_size", "16", "--temperature", "1.0",
                "--seed", str(args.seed),
            ],
        )  # fmt: skip
        timings["cold-start sft"] = run(
            "cold-start SFT (traces mixed 1:1 with direct answers)",
            [
                python, "scripts/sft.py", "recipes/demo/cold_start.yaml", "--model_name_or_path", str(sft_dir),
                "--dataset_name", str(cold_start_dir / "dataset"), "--mix_dataset_name", str(data_dir / "sft"),
                "--output_dir", str(cold_start_sft_dir), "--seed", str(args.seed),
            ],
        )  # fmt: skip

    print("\n=== demo: summary")
    for step, seconds in timings.items():
        print(f"  {step:<16} {seconds:6.1f} s")
    losses = logged(sft_dir, "loss")
    print(
        f"  SFT loss         {losses[0]:.3f} -> {losses[-1]:.3f}  ({sft_dir})" if losses else "  SFT loss not logged"
    )
    for task, reward in (("grounding", "soft_f1"), ("report", "gleu")):
        values = logged(grpo_dirs[task], f"rewards/{reward}/mean")
        if values:
            print(f"  GRPO {task:<10}  {reward} {values[0]:.3f} -> {values[-1]:.3f}  ({grpo_dirs[task]})")
    if args.thinking:
        stats = json.loads((cold_start_dir / "stats.json").read_text())
        losses = logged(cold_start_sft_dir, "loss")
        print(
            f"  cold-start       kept {stats['kept']} of {stats['rows']} traces; SFT loss {losses[0]:.3f} -> {losses[-1]:.3f}"
        )
    print(f"  model cards      {sft_dir / 'README.md'}, {grpo_dirs['grounding'] / 'README.md'}")


if __name__ == "__main__":
    main()
