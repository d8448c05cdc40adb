"""The demo's pipeline end to end in its quick form (CI): every stage runs and the final line is well formed."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_quick_demo_runs_every_stage(tmp_path):
    result = subprocess.run(
        [sys.executable, "scripts/demo.py", "--quick", "--thinking", "--output_dir", str(tmp_path), "--seed", "3"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    last_line = result.stdout.strip().splitlines()[-1]
    number = r"[+-]?\d\.\d{4}"
    pattern = rf"demo: soft_f1 sft=\d\.\d{{4}} grpo=\d\.\d{{4}} delta={number} \[{number}, {number}\]"
    assert re.fullmatch(pattern, last_line), last_line
    comparison = (tmp_path / "demo-eval" / "comparison.md").read_text()
    assert "| grounding soft-F1 |" in comparison and "| report GLEU |" in comparison
    assert "| greedy |" in comparison and "| T=1 |" in comparison and "| GRPO (finding-F1) |" in comparison
    assert "| GRPO report-finding | finding_f1 |" in comparison
    assert "Does the SFT model read the image?" in comparison and "| report_generation |" in comparison
    for figure in ("reward_curves.png", "heldout.png"):
        assert (tmp_path / "demo-eval" / figure).stat().st_size > 0
    for name in ("sft", "grpo-grounding", "grpo-report", "grpo-report-finding"):
        assert (tmp_path / "demo-eval" / name / "metrics.json").is_file()
    assert (tmp_path / "demo-cold-start-sft" / "README.md").is_file()
    # The models' own cards show their greedy evaluation without a push; the sampled ones leave them alone.
    for model in ("demo-sft", "demo-grpo-grounding"):
        card = (tmp_path / model / "README.md").read_text()
        assert "Not evaluated yet" not in card and f"| **{model}** |" in card and "--temperature" not in card
        assert (tmp_path / model / "evaluation" / "metrics.json").is_file()
