"""Run scripts/grpo.py unchanged, recording per-step wall time, TRL's profiled sections and CUDA peak memory.

TRL times generation, reward and loss sections with ``ProfilingContext`` but only sends them to wandb/mlflow/trackio;
here its ``_log_metrics`` is wrapped to keep them. A callback added to every GRPOTrainer notes the wall time between
optimizer steps (CUDA synchronised) and ``torch.cuda.max_memory_allocated``/``max_memory_reserved`` after each step.

Usage (same arguments as scripts/grpo.py):
    GRPO_TIMED_JSON=out.json python benchmarks/gpu/grpo_timed.py recipes/demo/grpo_grounding.yaml --max_steps 3 ...
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GIB = 1024**3


def main() -> None:
    import torch
    import trl
    import trl.extras.profiling as profiling
    from transformers import TrainerCallback

    cuda = torch.cuda.is_available()
    record: dict = {"argv": sys.argv[1:], "cuda": cuda, "steps": [], "profiling": []}
    if cuda:
        record["device_name"] = torch.cuda.get_device_name(0)
        record["device_total_gib"] = round(torch.cuda.get_device_properties(0).total_memory / GIB, 2)

    original_log = profiling.ProfilingContext._log_metrics

    def log_metrics(self, duration: float) -> None:
        record["profiling"].append({"name": self.name, "step": self.step, "s": round(duration, 4)})
        return original_log(self, duration)

    profiling.ProfilingContext._log_metrics = log_metrics

    def memory() -> dict:
        if not cuda:
            return {}
        torch.cuda.synchronize()
        return {
            "alloc_gib": round(torch.cuda.memory_allocated() / GIB, 3),
            "max_alloc_gib": round(torch.cuda.max_memory_allocated() / GIB, 3),
            "max_reserved_gib": round(torch.cuda.max_memory_reserved() / GIB, 3),
        }

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            record["at_train_begin"] = memory()
            self.last = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            mem = memory()
            now = time.perf_counter()
            record["steps"].append({"step": state.global_step, "wall_s": round(now - self.last, 3), **mem})
            print(f"[grpo_timed] step {state.global_step}: {now - self.last:.2f} s {mem}", flush=True)
            self.last = now

    original_init = trl.GRPOTrainer.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.add_callback(StepTimer())
        record["n_trainable_params"] = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        record["n_params"] = sum(p.numel() for p in self.model.parameters())
        record["ref_model"] = type(getattr(self, "ref_model", None)).__name__

    trl.GRPOTrainer.__init__ = init

    out_json = os.environ.get("GRPO_TIMED_JSON")
    # `timeout` sends SIGTERM: exit through SystemExit so the finally block still writes what was measured.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    t0 = time.perf_counter()
    sys.argv = [str(REPO_ROOT / "scripts/grpo.py"), *sys.argv[1:]]
    try:
        runpy.run_path(str(REPO_ROOT / "scripts/grpo.py"), run_name="__main__")
        record["ok"] = True
    except BaseException as error:  # record any failure (OOM, timeout) and re-raise
        record["ok"] = False
        record["error"] = f"{type(error).__name__}: {error}"[:3000]
        raise
    finally:
        record["total_s"] = round(time.perf_counter() - t0, 2)
        record["final_memory"] = memory()
        sections = defaultdict(list)
        for p in record["profiling"]:
            sections[p["name"]].append(p["s"])
        record["profiling_summary"] = {
            name: {"n": len(v), "sum_s": round(sum(v), 3), "mean_s": round(sum(v) / len(v), 4)}
            for name, v in sections.items()
        }
        walls = [s["wall_s"] for s in record["steps"]]
        if walls:
            record["s_per_step_all"] = round(sum(walls) / len(walls), 3)
            if len(walls) > 1:
                record["s_per_step_after_first"] = round(sum(walls[1:]) / len(walls[1:]), 3)
        if out_json:
            Path(out_json).write_text(json.dumps(record, indent=1) + "\n")
        print("[grpo_timed] summary " + json.dumps({k: v for k, v in record.items() if k != "profiling"}), flush=True)


if __name__ == "__main__":
    main()
