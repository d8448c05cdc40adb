"""Paired comparisons (radvlm_grpo.evaluation.paired): values computed by hand."""

import json

import numpy as np
import pytest

from radvlm_grpo.data.synthetic_tasks import NORMAL_REPORT
from radvlm_grpo.evaluation.paired import (
    paired_difference,
    paired_finding_f1,
    report_statistics,
    window_difference,
)

TUBE = "An endotracheal tube is in place."
BIG_HEART = "The heart is enlarged."


def write_samples(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def grounding_rows(values):
    return [{"id": f"r{i}", "task": "phrase_grounding", "soft_f1": v} for i, v in enumerate(values)]


def test_a_constant_gain_has_a_zero_width_interval(tmp_path):
    a = write_samples(tmp_path / "a", grounding_rows([0.1, 0.5, 0.9, 0.3]))
    b = write_samples(tmp_path / "b", grounding_rows([0.2, 0.6, 1.0, 0.4]))
    difference = paired_difference(a, b)
    assert (difference.a, difference.b) == pytest.approx((0.45, 0.55))
    assert (difference.delta, difference.low, difference.high) == pytest.approx((0.1, 0.1, 0.1))
    assert difference.excludes_zero() and difference.n == 4


def test_the_pairing_removes_the_rows_own_spread(tmp_path):
    # Rows differ a lot, the gain per row is small and steady: paired, the interval excludes 0.
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 60)
    a = write_samples(tmp_path / "a", grounding_rows(base * 0.9))
    b = write_samples(tmp_path / "b", grounding_rows(base * 0.9 + rng.uniform(0.02, 0.06, 60)))
    difference = paired_difference(a, b)
    assert 0.02 < difference.low < difference.delta < difference.high < 0.06


def test_rows_are_matched_by_id_and_task(tmp_path):
    a = write_samples(tmp_path / "a", grounding_rows([0.0, 1.0]) + [{"id": "rep", "task": "report_generation"}])
    b = write_samples(tmp_path / "b", grounding_rows([1.0, 1.0, 0.5]))  # r2 is not in a: left out
    assert paired_difference(a, b).n == 2 and paired_difference(a, b).delta == pytest.approx(0.5)
    with pytest.raises(ValueError, match="share no row"):
        paired_difference(a, b, tasks=["anatomical_grounding"])


def report_rows(answers, references):
    return [
        {"id": f"r{i}", "task": "report_generation", "answer": answer, "reference": reference}
        for i, (answer, reference) in enumerate(zip(answers, references))
    ]


def test_report_statistics_by_hand(tmp_path):
    references = [f"{TUBE} {BIG_HEART}", BIG_HEART, NORMAL_REPORT]
    folder = write_samples(tmp_path / "m", report_rows([TUBE, NORMAL_REPORT, NORMAL_REPORT], references))
    stats = report_statistics(folder)
    # Findings: row 0 TP 1 (tube), FN 1 (heart); row 1 FN 1; row 2 nothing. Micro F1 = 2 / (2 + 0 + 2).
    assert stats.finding_f1 == pytest.approx(0.5)
    assert stats.template_share == pytest.approx(2 / 3) and stats.n == 3
    assert stats.mean_chars == pytest.approx(np.mean([len(TUBE), len(NORMAL_REPORT), len(NORMAL_REPORT)]))


def test_paired_finding_f1_recomputes_the_micro_f1(tmp_path):
    references = [f"{TUBE} {BIG_HEART}", BIG_HEART]
    a = write_samples(tmp_path / "a", report_rows([NORMAL_REPORT, NORMAL_REPORT], references))
    b = write_samples(tmp_path / "b", report_rows([f"{TUBE} {BIG_HEART}", BIG_HEART], references))
    difference = paired_finding_f1(a, b)
    assert (difference.a, difference.b, difference.delta) == pytest.approx((0.0, 1.0, 1.0))
    assert difference.low == pytest.approx(1.0)


def test_window_difference_compares_the_first_and_last_fifth():
    values = [0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0]
    rise = window_difference(values)
    assert (rise.a, rise.b, rise.delta, rise.n) == pytest.approx((0.0, 1.0, 1.0, 10))
    assert (rise.low, rise.high) == pytest.approx((1.0, 1.0))
    flat = window_difference([0.3, 0.5] * 10)
    assert flat.low < 0 < flat.high and not flat.excludes_zero()
    with pytest.raises(ValueError, match="too few"):
        window_difference([1.0])
