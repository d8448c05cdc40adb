"""Grounding metrics of Table 2 per benchmark, as bootstrap-ready statistics.

The numbers are ``radvlm_grpo.metrics.grounding_ap``'s (RadVLM's per-sample mAP@0.5 and pooled average IoU) and
``radvlm_grpo.metrics.soft_f1``'s (the paper's Hungarian soft-F1); this module only splits rows into benchmarks and exposes
each metric as additive per-sample statistics (mAP and soft-F1: means; average IoU: IoU sum over pairs).

A benchmark is a task on one source dataset: ``<task>/<source>``. Table 2 reports four of them (Chest ImaGenome
anatomy, VinDr-CXR abnormalities, MS-CXR and PadChest-GR phrases). The GRPO schema keeps the task, not the source, so
the source of a row comes from an optional ``source`` column, else from the id prefix the converters write
(RadVLM's ``chestima-test_3``, ``vindr-cxr-mono-test_1``, ``mscxr-test_12``, ``padchest-test_3``; ``nih-...``;
``synthetic-...``). A row whose source is not recorded keeps its bare task name, and its column is headed
"source not recorded": a paper dataset is named only for rows that really come from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from radvlm_grpo.evaluation.bootstrap import Statistic, mean_statistic, ratio_statistic
from radvlm_grpo.metrics.grounding_ap import sample_ap
from radvlm_grpo.metrics.iou import iou_matrix
from radvlm_grpo.metrics.soft_f1 import PAPER, soft_f1_batch
from radvlm_grpo.vocab.schema import ABNORMALITY_GROUNDING, ANATOMICAL_GROUNDING, PHRASE_GROUNDING

ANATOMY_CIG = f"{ANATOMICAL_GROUNDING}/chest-imagenome"
ABNORMALITY_VINDR = f"{ABNORMALITY_GROUNDING}/vindr-cxr"
PHRASE_MS = f"{PHRASE_GROUNDING}/mscxr"
PHRASE_PAD = f"{PHRASE_GROUNDING}/padchest"
ABNORMALITY_NIH = f"{ABNORMALITY_GROUNDING}/nih"
ALL_GROUNDING = "grounding"

# Benchmark key -> Table 2 column header, in the paper's column order.
TABLE2_BENCHMARKS = {
    ANATOMY_CIG: "Anatomy (Chest ImaGenome)",
    ABNORMALITY_VINDR: "Abnorm. (VinDr-CXR)",
    PHRASE_MS: "Phrase_MS (MS-CXR)",
    PHRASE_PAD: "Phrase_Pad (PadChest-GR)",
}

# Source key in benchmark names -> the dataset's name in headers.
SOURCE_NAMES = {
    "chest-imagenome": "Chest ImaGenome",
    "vindr-cxr": "VinDr-CXR",
    "mscxr": "MS-CXR",
    "padchest": "PadChest-GR",
    "nih": "NIH ChestX-ray14",
    "synthetic": "synthetic",
}
# Names a ``source`` column or an id prefix may use for them (lowercase, "-" for "_" and spaces).
_SOURCE_ALIASES = {
    "chestima": "chest-imagenome",
    "chestimagenome": "chest-imagenome",
    "vindr": "vindr-cxr",
    "ms-cxr": "mscxr",
    "padchest-gr": "padchest",
    "nih-chestxray14": "nih",
    "chestx-ray14": "nih",
    **{name: name for name in SOURCE_NAMES},
}
TASK_HEADERS = {ANATOMICAL_GROUNDING: "Anatomy", ABNORMALITY_GROUNDING: "Abnorm.", PHRASE_GROUNDING: "Phrase"}
UNRECORDED = "source not recorded"


def _normalise(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def _known_source(name: str) -> str | None:
    """The source key of a known dataset name: exact, or as a prefix followed by "-" (``padchest-gr-v2``)."""
    for alias in sorted(_SOURCE_ALIASES, key=len, reverse=True):
        if name == alias or name.startswith(alias + "-"):
            return _SOURCE_ALIASES[alias]
    return None


def source_of(row_id: str = "", source: str | None = None) -> str | None:
    """The row's source key: the ``source`` column (any declared value counts), else a known id prefix, else None."""
    if source and source.strip():
        name = _normalise(source)
        return _known_source(name) or name.replace("/", "-")
    prefix = re.split(r"[-_]", (row_id or "").lower())[0]
    return _SOURCE_ALIASES.get(prefix)


def benchmark_of(task: str, row_id: str = "", source: str | None = None) -> str:
    """The benchmark of a grounding row, ``<task>/<source>`` or the bare task (module docstring); other tasks map
    to themselves."""
    if task not in TASK_HEADERS:
        return task
    found = source_of(row_id, source)
    return f"{task}/{found}" if found else task


def benchmark_header(benchmark: str) -> str:
    """The column header of a benchmark: Table 2's for the paper's four, else "<task> (<source>)", with "source not
    recorded" for a bare task."""
    if benchmark in TABLE2_BENCHMARKS:
        return TABLE2_BENCHMARKS[benchmark]
    task, _, source = benchmark.partition("/")
    if task not in TASK_HEADERS:
        return benchmark
    return f"{TASK_HEADERS[task]} ({SOURCE_NAMES.get(source, source) if source else UNRECORDED})"


def grounding_statistics(
    pred_boxes: Sequence[np.ndarray], true_boxes: Sequence[np.ndarray], iou_threshold: float = 0.5
) -> list[Statistic]:
    """``map_50`` (mean per-sample AP), ``avg_iou`` (IoU of every pair, pooled) and ``soft_f1`` (mean, paper form)."""
    if len(pred_boxes) != len(true_boxes):
        raise ValueError(f"{len(pred_boxes)} prediction sets but {len(true_boxes)} truth sets.")
    aps, iou_sums, pairs = [], [], []
    for p, t in zip(pred_boxes, true_boxes):
        p, t = np.asarray(p, dtype=np.float64).reshape(-1, 4), np.asarray(t, dtype=np.float64).reshape(-1, 4)
        aps.append(sample_ap(p, t, iou_threshold))
        both = len(p) > 0 and len(t) > 0
        iou_sums.append(float(iou_matrix(p, t).sum()) if both else 0.0)
        pairs.append(len(p) * len(t) if both else 0)
    soft = soft_f1_batch(pred_boxes, true_boxes, PAPER) if len(pred_boxes) else np.zeros(0)
    return [
        mean_statistic(f"map_{round(iou_threshold * 100)}", aps),
        ratio_statistic("avg_iou", iou_sums, pairs),
        mean_statistic("soft_f1", soft),
    ]


def group_rows(benchmarks: Sequence[str]) -> dict[str, list[int]]:
    """Row indices of each benchmark: Table 2's first, the others by task in Table 2's order (anatomy, abnormalities,
    phrases) then by name; plus all grounding rows pooled when there are several benchmarks."""
    groups: dict[str, list[int]] = {}
    for i, benchmark in enumerate(benchmarks):
        groups.setdefault(benchmark, []).append(i)
    tasks = list(TASK_HEADERS)

    def rank(benchmark: str) -> tuple[int, str]:
        task = benchmark.partition("/")[0]
        return (tasks.index(task) if task in tasks else len(tasks), benchmark)

    order = [*TABLE2_BENCHMARKS, *sorted(set(groups) - set(TABLE2_BENCHMARKS), key=rank)]
    ordered = {b: groups[b] for b in order if b in groups}
    if len(ordered) > 1:
        ordered[ALL_GROUNDING] = list(range(len(benchmarks)))
    return ordered
