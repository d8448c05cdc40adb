"""Reward throughput per GRPO step: soft-F1 on 512 prompts x 8 completions, batched vs a naive per-pair loop.

The paper's grounding step scores 4,096 completions (512 prompts x 8 rollouts). This script builds such a batch of
RadVLM-style answers (1 to 5 true boxes, jittered, missing, extra and malformed predicted boxes), times the registry
reward (parsing included) against a per-pair Python loop (what a straightforward port of the authors' reward does),
checks that both agree, and prints the lexical rewards for reference. Runs on one core (affinity and thread
environment set below); the last line is ``seconds_per_step: <x>`` for the soft-F1 reward.

    python benchmarks/soft_f1_throughput.py [--prompts 512] [--generations 8] [--repeats 5]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from radvlm_grpo.metrics.soft_f1 import soft_f1_batch  # noqa: E402
from radvlm_grpo.rewards import get_reward_funcs  # noqa: E402
from radvlm_grpo.vocab.boxes import BOX_PATTERN, format_boxes, parse_boxes_batch  # noqa: E402
from radvlm_grpo.vocab.schema import ABNORMALITY_GROUNDING, REPORT_GENERATION  # noqa: E402

WORDS = "the heart is mildly enlarged no focal consolidation pleural effusion or pneumothorax lungs are clear".split()


def make_batch(prompts: int, generations: int, seed: int = 0) -> tuple[list, list, list]:
    """Conversational completions, ``boxes`` and ``task`` columns, each of length prompts x generations."""
    rng = random.Random(seed)
    completions, boxes, tasks = [], [], []
    for _ in range(prompts):
        n_true = rng.choices([1, 2, 3, 5], weights=[70, 18, 8, 4])[0]
        truth = []
        for _ in range(n_true):
            x1, y1 = rng.uniform(0, 0.7), rng.uniform(0, 0.7)
            truth.append([x1, y1, x1 + rng.uniform(0.05, 0.3), y1 + rng.uniform(0.05, 0.3)])
        for _ in range(generations):
            pred = [[v + rng.gauss(0, 0.03) for v in b] for b in truth if rng.random() > 0.1]
            if rng.random() < 0.2:
                pred.append(list(pred[0]) if pred else [0.1, 0.1, 0.3, 0.3])  # duplicate or extra box
            if rng.random() < 0.05:
                pred.append([0.9, 0.2, 0.1, 0.4])  # x2 < x1: invalid
            text = f"The finding is located at the coordinates {format_boxes(pred)} on the image." if pred else "None."
            completions.append([{"role": "assistant", "content": text}])
            boxes.append([[round(v, 2) for v in b] for b in truth])
            tasks.append(ABNORMALITY_GROUNDING)
    return completions, boxes, tasks


def _iou_loop(a: list[float], b: list[float]) -> float:
    """One pair, plain Python, with the module's validity rule."""
    for box in (a, b):
        if not all(0.0 <= v <= 1.0 for v in box) or box[2] <= box[0] or box[3] <= box[1]:
            return 0.0
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def naive_match(preds: list, boxes: list) -> list[float]:
    """Per sample: a per-pair IoU loop, SciPy's assignment, the paper's form."""
    scores = []
    for pred, truth in zip(preds, boxes):
        if not pred or not truth:
            scores.append(0.0)
            continue
        matrix = np.array([[_iou_loop(p, t) for t in truth] for p in pred])
        rows, cols = linear_sum_assignment(1.0 - matrix)
        scores.append(2.0 * matrix[rows, cols].sum() / (len(pred) + len(truth)))
    return scores


def naive_soft_f1(completions: list, boxes: list) -> list[float]:
    """Per completion: regex parse, then ``naive_match``."""
    preds = [[[float(v) for v in m] for m in BOX_PATTERN.findall(c[0]["content"])] for c in completions]
    return naive_match(preds, boxes)


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=512)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    completions, boxes, tasks = make_batch(args.prompts, args.generations)
    n = len(completions)
    soft_f1 = get_reward_funcs(["soft_f1"])[0]
    batched = soft_f1(completions, boxes=boxes, task=tasks)
    naive = naive_soft_f1(completions, boxes)
    gap = float(np.max(np.abs(np.array(batched) - np.array(naive))))
    assert gap < 1e-9, f"batched and naive soft-F1 disagree by {gap}"

    t_batched = best_time(lambda: soft_f1(completions, boxes=boxes, task=tasks), args.repeats)
    t_naive = best_time(lambda: naive_soft_f1(completions, boxes), args.repeats)
    parsed = parse_boxes_batch([c[0]["content"] for c in completions])
    parsed_lists = [p.tolist() for p in parsed]
    truths = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes]
    t_match = best_time(lambda: soft_f1_batch(parsed, truths), args.repeats)
    t_match_naive = best_time(lambda: naive_match(parsed_lists, boxes), args.repeats)
    print(f"batch: {args.prompts} prompts x {args.generations} generations = {n} completions, one core")
    print(f"mean soft-F1: {np.mean(batched):.4f} (batched and naive agree to {gap:.1e})")
    print(f"{'soft-F1 per step':<30}{'batched (s)':>12}{'naive loop (s)':>16}{'speed-up':>10}")
    print(f"{'reward (parse + match)':<30}{t_batched:>12.4f}{t_naive:>16.4f}{t_naive / t_batched:>9.1f}x")
    print(
        f"{'matching only (parsed boxes)':<30}{t_match:>12.4f}{t_match_naive:>16.4f}{t_match_naive / t_match:>9.1f}x"
    )
    print(f"{'reward per completion (us)':<30}{1e6 * t_batched / n:>12.1f}{1e6 * t_naive / n:>16.1f}")

    reports = [[{"role": "assistant", "content": " ".join(random.Random(i).choices(WORDS, k=40))}] for i in range(n)]
    solutions = [" ".join(random.Random(i // args.generations + 10**6).choices(WORDS, k=40)) for i in range(n)]
    for reward in get_reward_funcs(["gleu", "bleu", "rouge_l"]):
        t = best_time(lambda r=reward: r(reports, solution=solutions, task=[REPORT_GENERATION] * n), 1)
        print(f"{reward.__name__ + ' reward (40-word reports)':<30}{t:>12.4f}")
    print(f"seconds_per_step: {t_batched:.4f}")


if __name__ == "__main__":
    main()
