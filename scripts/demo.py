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


def final_loss(output_dir: Path) -> float | None:
    state = output_dir / "trainer_state.json"
    if not state.is_file():
        return None
    history = json.loads(state.read_text())["log_history"]
    return next((log["loss"] for log in reversed(history) if "loss" in log), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", default="data", help="Folder for the model, data and checkpoints.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of the tiny model, the data and training.")
    args = parser.parse_args()
    out = Path(args.output_dir).resolve()
    model_dir, data_dir, sft_dir = out / "tiny-qwen3-vl", out / "synthetic", out / "demo-sft"
    python = sys.executable
    timings = {}

    timings["tiny model"] = run(
        "build the tiny Qwen3-VL", [python, "-m", "radvlm_grpo.tiny", str(model_dir), "--seed", str(args.seed)]
    )
    timings["synthetic data"] = run(
        "build synthetic CXR data",
        [python, "-m", "radvlm_grpo.data.synthetic", str(data_dir), "--schema", "both", "--seed", str(args.seed)],
    )
    if sft_dir.exists():  # a demo starts fresh; a user's run resumes from its last checkpoint instead
        shutil.rmtree(sft_dir)
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

    print("\n=== demo: summary")
    for step, seconds in timings.items():
        print(f"  {step:<16} {seconds:6.1f} s")
    loss = final_loss(sft_dir)
    print(f"  SFT final loss   {loss:.4f}" if loss is not None else "  SFT final loss   not logged")
    print(f"  SFT model        {sft_dir}")
    print(f"  model card       {sft_dir / 'README.md'}")


if __name__ == "__main__":
    main()
