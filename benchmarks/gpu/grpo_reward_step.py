"""The radcliq reward inside a real GRPO step: its share of the step time and the GPU memory its scorers add.

Runs ``scripts/grpo.py`` unchanged, in this process, with ``--reward_funcs radcliq`` scored in-process on real-size
random-weight scorer models (RadGraph-XL's DyGIE++ on bert-base, CheXbert on bert-base, BERTScore on
distilroberta-base geometry, as ``benchmarks/reward_throughput.py`` builds them; the weights do not change the cost),
and records:

- ``scorer_resident_gib``: GPU memory allocated by building the scorers (their weights), before the policy loads;
- per reward call: wall seconds (synchronised), pairs, and the call's transient GPU memory above what was allocated
  when it started;
- per optimizer step: wall seconds (synchronised) and torch's peak allocated memory;
- ``reward_share``: reward seconds over step seconds, steps after the first (the first includes warm-up).

Usage (the remaining arguments go to scripts/grpo.py; see benchmarks/gpu/reward_gpu_check.sh):
    python benchmarks/gpu/grpo_reward_step.py --scorers DIR --json OUT.json [--scorer-dtype float32] [--tiny-scorers] \
        recipes/demo/grpo_report.yaml --model_name_or_path ... --max_steps 3
``--tiny-scorers`` builds toy-width scorers (tests of this script on a CPU; the figures then mean nothing).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import runpy
import signal
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GIB = 1024**3


def _reward_throughput():
    """benchmarks/reward_throughput.py as a module (its model builder and report generator)."""
    spec = importlib.util.spec_from_file_location("reward_throughput", REPO_ROOT / "benchmarks/reward_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_scorers(folder: Path, tiny: bool, seed: int = 0) -> None:
    """Random scorer models in the weights-folder layout, unless ``folder`` already holds them."""
    if (folder / "radgraph-xl" / "weights.th").is_file():
        return
    bench = _reward_throughput()
    hyps, refs = bench.make_batch(64, 8, seed)
    folder.mkdir(parents=True, exist_ok=True)
    bench.build_models(folder, hyps + refs, seed, tiny=tiny)


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scorers", type=Path, required=True, help="scorer weights folder (built when missing)")
    parser.add_argument("--json", type=Path, required=True, help="where to write the figures")
    parser.add_argument("--scorer-dtype", default="float32", help="scorer_dtype of the reward")
    parser.add_argument("--tiny-scorers", action="store_true", help="toy-width scorers (tests on a CPU)")
    return parser.parse_known_args(argv)


def summarize(record: dict) -> dict:
    """Reward share of the step time and memory figures, steps after the first."""
    steps = record["steps"][1:] or record["steps"]
    numbers = {s["step"] for s in steps}
    reward_s = sum(c["s"] for c in record["reward_calls"] if c["step"] in numbers)
    step_s = sum(s["wall_s"] for s in steps)
    transient = [c["transient_gib"] for c in record["reward_calls"] if c["transient_gib"] is not None]
    peaks = [s["max_alloc_gib"] for s in record["steps"] if s.get("max_alloc_gib") is not None]
    return {
        "steps_counted": sorted(numbers),
        "step_s_mean": round(step_s / len(steps), 3) if steps else None,
        "reward_s_mean": round(reward_s / len(steps), 3) if steps else None,
        "reward_share": round(reward_s / step_s, 4) if step_s else None,
        "scorer_resident_gib": record.get("scorer_resident_gib"),
        "reward_transient_gib_max": max(transient) if transient else None,
        "step_peak_alloc_gib_max": max(peaks) if peaks else None,
    }


def main(argv: list[str] | None = None) -> dict:
    args, grpo_args = parse_args(sys.argv[1:] if argv is None else argv)
    import torch
    import trl
    from transformers import TrainerCallback

    from radvlm_grpo.rewards import clinical as clinical_rewards
    from radvlm_grpo.rewards import get_reward_funcs

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def allocated() -> float | None:
        return round(torch.cuda.memory_allocated() / GIB, 4) if cuda else None

    record: dict = {"argv": grpo_args, "device": torch.cuda.get_device_name(0) if cuda else "cpu", "steps": []}
    record["reward_calls"] = []
    started = time.perf_counter()
    build_scorers(args.scorers, args.tiny_scorers)
    record["build_scorers_s"] = round(time.perf_counter() - started, 2)

    # The scorers are built here, with the options scripts/grpo.py will pass, so that the script reuses them (one
    # scorer per configuration and process) and their memory is measured before the policy loads.
    options = dict(scorer_weights_dir=str(args.scorers), scorer_device=device, scorer_dtype=args.scorer_dtype)
    before = allocated()
    get_reward_funcs(["radcliq"], **options)
    sync()
    record["scorer_resident_gib"] = round(allocated() - before, 4) if cuda else None

    state = {"step": 1, "overall_peak": 0.0}
    original_call = clinical_rewards.ClinicalReward.__call__

    def timed_call(self, completions, *call_args, **kwargs):
        sync()
        at_start = torch.cuda.memory_allocated() if cuda else 0
        if cuda:
            state["overall_peak"] = max(state["overall_peak"], torch.cuda.max_memory_allocated())
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        result = original_call(self, completions, *call_args, **kwargs)
        sync()
        seconds = time.perf_counter() - t0
        transient = round((torch.cuda.max_memory_allocated() - at_start) / GIB, 4) if cuda else None
        record["reward_calls"].append(
            {"step": state["step"], "s": round(seconds, 4), "pairs": len(completions), "transient_gib": transient}
        )
        return result

    clinical_rewards.ClinicalReward.__call__ = timed_call

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, trainer_state, control, **kwargs):
            sync()
            state["step"] = trainer_state.global_step + 1
            self.last = getattr(self, "last", None) or time.perf_counter()

        def on_step_end(self, args, trainer_state, control, **kwargs):
            sync()
            now = time.perf_counter()
            peak = None
            if cuda:
                state["overall_peak"] = max(state["overall_peak"], torch.cuda.max_memory_allocated())
                peak = round(state["overall_peak"] / GIB, 3)
            record["steps"].append({"step": trainer_state.global_step, "wall_s": round(now - self.last, 3)})
            record["steps"][-1]["max_alloc_gib"] = peak
            print(f"[grpo_reward_step] step {trainer_state.global_step}: {now - self.last:.2f} s", flush=True)
            self.last = now

    original_init = trl.GRPOTrainer.__init__

    def init(self, *init_args, **init_kwargs):
        original_init(self, *init_args, **init_kwargs)
        self.add_callback(StepTimer())

    trl.GRPOTrainer.__init__ = init
    # A timeout's SIGTERM ends the run through `finally`, so the figures measured so far are still written. The
    # handler and sys.argv are put back afterwards: a caller's process (a test) must not keep them.
    previous_sigterm, previous_argv = signal.getsignal(signal.SIGTERM), sys.argv
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    sys.argv = [str(REPO_ROOT / "scripts/grpo.py"), *grpo_args, "--reward_funcs", "radcliq"]
    sys.argv += ["--scorer_weights_dir", str(args.scorers), "--scorer_device", device]
    sys.argv += ["--scorer_dtype", args.scorer_dtype]
    try:
        runpy.run_path(str(REPO_ROOT / "scripts/grpo.py"), run_name="__main__")
        record["ok"] = True
    except BaseException as error:  # record any failure (OOM, timeout) and re-raise
        record["ok"] = False
        record["error"] = f"{type(error).__name__}: {error}"[:3000]
        raise
    finally:
        clinical_rewards.ClinicalReward.__call__ = original_call
        trl.GRPOTrainer.__init__ = original_init
        signal.signal(signal.SIGTERM, previous_sigterm)
        sys.argv = previous_argv
        record["summary"] = summarize(record)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print("[grpo_reward_step] summary " + json.dumps(record["summary"]), flush=True)
    return record


if __name__ == "__main__":
    main()
