"""Gather what benchmarks/gpu/grpo_gpu_check.sh left in its work folder into OUT/summary.json and OUT/summary.md.

Usage: python benchmarks/gpu/summarize.py WORK_DIR OUT_DIR
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

RUNS = {
    "tiny": ("tiny", "run_tiny.json", "out_tiny"),
    "2b": ("s2b", "run_2b.json", "out_2b"),
    "8b_lora": ("s8b", "run_8b_lora.json", "out_8b_lora"),
    "2b_672px": ("s2b", "run_2b_672px.json", "out_2b_672"),
}
PHASE_OF_RUN = {"tiny": "grpo_tiny", "2b": "grpo_2b", "8b_lora": "grpo_8b_lora", "2b_672px": "grpo_2b_672px"}


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_phases(work: Path) -> dict:
    phases: dict = {}
    path = work / "phases.txt"
    if not path.is_file():
        return phases
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        try:
            t = float(parts[0])
        except ValueError:
            continue
        kind, name = parts[1], parts[2]
        entry = phases.setdefault(name, {})
        if kind == "start":
            entry["start"] = t
        elif kind == "end":
            entry["end"] = t
            entry["rc"] = int(parts[3].split("=")[1]) if len(parts) > 3 else None
            if "start" in entry:
                entry["s"] = round(t - entry["start"], 1)
        elif kind == "skip":
            entry["skipped"] = True
    return phases


def read_smi(work: Path) -> list[tuple[float, float]]:
    samples = []
    path = work / "smi.txt"
    if not path.is_file():
        return samples
    for line in path.read_text().splitlines():
        try:
            stamp, used = (x.strip() for x in line.split(","))
            t = datetime.strptime(stamp, "%Y/%m/%d %H:%M:%S.%f").timestamp()
            samples.append((t, float(used)))
        except ValueError:
            continue
    return samples


def summarize(work: Path, out: Path) -> dict:
    phases = read_phases(work)
    smi = read_smi(work)
    for entry in phases.values():
        if "start" in entry and smi:
            end = entry.get("end", float("inf"))
            used = [m for t, m in smi if entry["start"] <= t <= end]
            if used:
                entry["smi_peak_used_gib"] = round(max(used) / 1024, 2)
    summary: dict = {"phases": phases, "runs": {}}
    for key, (model_dir, run_json, out_dir) in RUNS.items():
        run = read_json(work / run_json)
        if run is None:
            continue
        run.pop("profiling", None)
        info = read_json(work / model_dir / "shaped_info.json")
        if info:
            run["model"] = info
        state = read_json(work / out_dir / "trainer_state.json")
        if state:
            logs = [log for log in state.get("log_history", []) if "step_time" in log]
            run["trl_step_time"] = [round(log["step_time"], 3) for log in logs]
            run["trl_logs"] = logs
        phase = phases.get(PHASE_OF_RUN[key], {})
        run["phase_s"] = phase.get("s")
        run["phase_rc"] = phase.get("rc")
        run["smi_peak_used_gib"] = phase.get("smi_peak_used_gib")
        summary["runs"][key] = run
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "summary.md").write_text(markdown(summary))
    return summary


def markdown(summary: dict) -> str:
    lines = [
        "| run | ok | params (trainable) | s/step (all) | s/step (after 1st) | generate s/step | "
        "_prepare_inputs s/step | compute_loss s/step | torch max alloc GiB | max reserved GiB | nvidia-smi peak GiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, run in summary["runs"].items():
        prof = run.get("profiling_summary", {})

        def per_step(name: str, run=run, prof=prof) -> str:
            entry = prof.get(f"GRPOTrainer.{name}")
            steps = len(run.get("steps", [])) or 1
            return f"{entry['sum_s'] / steps:.2f}" if entry else "-"

        mem = run.get("final_memory", {})
        params = run.get("n_params")
        trainable = run.get("n_trainable_params")
        lines.append(
            f"| {key} | {run.get('ok')} | {params / 1e9 if params else 0:.3f} B ({trainable / 1e9 if trainable else 0:.3f} B) "
            f"| {run.get('s_per_step_all', '-')} | {run.get('s_per_step_after_first', '-')} "
            f"| {per_step('transformers.generate')} | {per_step('_prepare_inputs')} | {per_step('compute_loss')} "
            f"| {mem.get('max_alloc_gib', '-')} | {mem.get('max_reserved_gib', '-')} | {run.get('smi_peak_used_gib', '-')} |"
        )
    lines += ["", "| phase | s | rc | nvidia-smi peak GiB |", "| --- | --- | --- | --- |"]
    for name, entry in summary["phases"].items():
        rc = "skipped" if entry.get("skipped") else entry.get("rc")
        lines.append(f"| {name} | {entry.get('s', '-')} | {rc} | {entry.get('smi_peak_used_gib', '-')} |")
    for key, run in summary["runs"].items():
        if not run.get("ok"):
            lines += ["", f"{key} failed: {run.get('error', '?')[:1500]}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    summarize(Path(sys.argv[1]), Path(sys.argv[2]))
    print((Path(sys.argv[2]) / "summary.md").read_text())
