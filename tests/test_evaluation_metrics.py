"""Evaluation metrics as bootstrap statistics: hand-computed values, equality with the reference implementations,
and interval properties (contain the point estimate, deterministic by seed, narrower with more samples)."""

import random

import numpy as np
import pytest

from radvlm_grpo.evaluation.bootstrap import (
    bootstrap,
    counts_of,
    mean_statistic,
    ratio_statistic,
    resample_indices,
)
from radvlm_grpo.evaluation.grounding_metrics import (
    ABNORMALITY_NIH,
    ABNORMALITY_VINDR,
    ALL_GROUNDING,
    ANATOMY_CIG,
    PHRASE_MS,
    PHRASE_PAD,
    benchmark_header,
    benchmark_of,
    grounding_statistics,
    group_rows,
)
from radvlm_grpo.evaluation.report_metrics import (
    CHEXBERT_CONDITIONS,
    bleu_statistic,
    chexbert_per_condition,
    chexbert_statistics,
    gleu_statistic,
    lexical_statistics,
)
from radvlm_grpo.metrics.grounding_ap import evaluate_grounding, grounding_map
from radvlm_grpo.metrics.lexical import corpus_bleu, google_bleu, rouge_l_scores

WORDS = "the heart is normal in size no pleural effusion small left basal atelectasis mild edema . ,".split()


def random_texts(rng: random.Random, n: int, empty: bool = True) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(0 if empty else 1, 14))) for _ in range(n)]


# --- bootstrap ------------------------------------------------------------------------------------------------------


def test_bootstrap_of_two_values_by_hand():
    # Resample means are 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4: the 2.5% and 97.5% percentiles are 0 and 1.
    interval = bootstrap([mean_statistic("m", [0.0, 1.0])])["m"]
    assert (interval.value, interval.low, interval.high, interval.n) == (0.5, 0.0, 1.0, 2)
    constant = bootstrap([mean_statistic("m", [0.3] * 10)])["m"]
    assert constant.low == pytest.approx(0.3) and constant.high == pytest.approx(0.3)


def test_ratio_and_mean_statistics_by_hand():
    assert ratio_statistic("iou", [1.0, 0.5, 0.0], [2, 1, 0]).value() == pytest.approx(1.5 / 3)
    assert mean_statistic("m", [1.0, np.nan, 0.0]).value() == 0.5  # a sample the scorer could not score is left out
    assert mean_statistic("m", []).value() == 0.0


def test_resamples_are_multiplicities_of_drawn_pairs():
    chunks = list(resample_indices(7, n_resamples=600, seed=3))
    assert [len(c) for c in chunks] == [250, 250, 100]
    counts = counts_of(chunks[0], 7)
    assert counts.shape == (250, 7) and (counts.sum(axis=1) == 7).all()
    assert (counts[5] == np.bincount(chunks[0][5], minlength=7)).all()


def test_intervals_contain_the_estimate_are_seeded_and_shrink_with_n():
    rng = np.random.default_rng(1)
    values = rng.uniform(size=40)
    first = bootstrap([mean_statistic("m", values)], seed=0)["m"]
    assert first.low <= first.value <= first.high
    assert bootstrap([mean_statistic("m", values)], seed=0)["m"] == first
    assert bootstrap([mean_statistic("m", values)], seed=1)["m"] != first
    larger = bootstrap([mean_statistic("m", np.tile(values, 16))], seed=0)["m"]
    assert larger.value == pytest.approx(first.value)
    assert larger.high - larger.low < 0.5 * (first.high - first.low)  # about 1/4 with 16x the samples


def test_each_resample_recomputes_the_corpus_metric_on_its_pairs():
    """The additive shortcut equals a full recomputation on the resampled pairs (BLEU, ROUGE-L, mAP, avg IoU)."""
    text_rng = random.Random(0)
    predictions, references = random_texts(text_rng, 12), random_texts(text_rng, 12, empty=False)
    box_rng = np.random.default_rng(0)
    corners = box_rng.uniform(0, 0.5, size=(12, 2, 2))
    true_boxes = [np.concatenate([c[0], c[0] + 0.3]).reshape(1, 4) for c in corners]
    pred_boxes = [
        b + box_rng.normal(0, 0.05, size=b.shape) if k % 4 else np.zeros((0, 4)) for k, b in enumerate(true_boxes)
    ]
    bleu = bleu_statistic(predictions, references)
    rouge = lexical_statistics(predictions, references)[0]
    map_50, avg_iou, _ = grounding_statistics(pred_boxes, true_boxes)
    indices = next(resample_indices(12, n_resamples=20, seed=0))
    counts = counts_of(indices, 12)
    for r, rows in enumerate(indices):
        preds, refs = [predictions[i] for i in rows], [references[i] for i in rows]
        assert bleu.resampled(counts)[r] == pytest.approx(corpus_bleu(preds, refs), abs=1e-12)
        assert rouge.resampled(counts)[r] == pytest.approx(np.mean(rouge_l_scores(preds, refs)))
        expected = grounding_map([pred_boxes[i] for i in rows], [true_boxes[i] for i in rows])
        assert map_50.resampled(counts)[r] == pytest.approx(expected["map_50"])
        assert avg_iou.resampled(counts)[r] == pytest.approx(expected["avg_iou"])


def test_paired_statistics_must_cover_the_same_samples():
    with pytest.raises(ValueError, match="same samples"):
        bootstrap([mean_statistic("a", [1, 2]), mean_statistic("b", [1])])


# --- report metrics -------------------------------------------------------------------------------------------------


def test_corpus_bleu_and_gleu_equal_nltk_on_the_same_tokens():
    rng = random.Random(2)
    for _ in range(30):
        n = rng.randint(1, 5)
        predictions, references = random_texts(rng, n), random_texts(rng, n, empty=False)
        assert bleu_statistic(predictions, references).value() == pytest.approx(corpus_bleu(predictions, references))
        assert gleu_statistic(predictions, references).value() == pytest.approx(google_bleu(predictions, references))
    # 3 tokens: no 4-gram, so unsmoothed BLEU is (NLTK's) ~1e-77
    assert bleu_statistic(["No effusion."], ["No effusion."]).value() == pytest.approx(0.0, abs=1e-70)


def test_lexical_statistics_by_hand():
    rouge, bleu, gleu, chars = lexical_statistics(
        ["the heart is normal", "no effusion"], ["the heart is normal", "small effusion"]
    )
    assert rouge.value() == pytest.approx((1.0 + 0.5) / 2)
    assert chars.value() == pytest.approx((19 + 11) / 2)
    # GLEU: pair 1 matches all 10 of its 1-4-grams; pair 2 matches 1 of max(3, 3) -> 11 / 13.
    assert gleu.value() == pytest.approx(11 / 13)
    assert 0 < bleu.value() < 1


def _labels(*rows: dict) -> np.ndarray:
    out = np.zeros((len(rows), len(CHEXBERT_CONDITIONS)), dtype=int)
    for i, row in enumerate(rows):
        for name in row:
            out[i, CHEXBERT_CONDITIONS.index(name)] = 1
    return out


HYP = _labels({"Cardiomegaly", "Edema"}, {"Pleural Effusion"}, {})
REF = _labels({"Cardiomegaly"}, {"Pleural Effusion", "Edema"}, {"No Finding"})


def test_chexbert_f1_by_hand():
    # TP: cardiomegaly, effusion; FP: edema (report 1); FN: edema (report 2), no finding (report 3).
    values = {s.name: s.value() for s in chexbert_statistics(HYP, REF)}
    assert values["chexbert_micro_f1_14"] == pytest.approx(4 / 7)
    assert values["chexbert_macro_f1_14"] == pytest.approx(2 / 14)  # F1 1 for two conditions, 0 for twelve
    assert values["chexbert_micro_f1_5"] == pytest.approx(4 / 6)
    assert values["chexbert_macro_f1_5"] == pytest.approx(2 / 5)
    per_condition = chexbert_per_condition(HYP, REF)
    assert per_condition["Cardiomegaly"] == {"f1": 1.0, "support": 1}
    assert per_condition["No Finding"] == {"f1": 0.0, "support": 1}


def test_chexbert_f1_matches_the_scorer():
    chexbert = pytest.importorskip("radvlm_grpo.scorers.chexbert")
    assert tuple(chexbert.CONDITIONS) == CHEXBERT_CONDITIONS
    rng = np.random.default_rng(0)
    hyp, ref = rng.integers(0, 2, size=(30, 14)), rng.integers(0, 2, size=(30, 14))
    expected = chexbert.chexbert_f1(hyp, ref)
    for statistic in chexbert_statistics(hyp, ref):
        assert statistic.value() == pytest.approx(expected[statistic.name])


# --- grounding metrics ----------------------------------------------------------------------------------------------


def test_grounding_statistics_by_hand_and_against_grounding_eval():
    true = [np.array([[0.1, 0.1, 0.5, 0.5]]), np.array([[0.2, 0.2, 0.6, 0.6], [0.6, 0.6, 0.9, 0.9]])]
    pred = [np.array([[0.1, 0.1, 0.5, 0.5]]), np.zeros((0, 4))]
    map_50, avg_iou, soft_f1 = grounding_statistics(pred, true)
    assert map_50.value() == 0.5 and avg_iou.value() == 1.0 and soft_f1.value() == 0.5
    assert list(map_50.per_sample) == [1.0, 0.0]

    texts = ["It is at [0.1, 0.1, 0.5, 0.5].", "There is none."]
    expected = evaluate_grounding(texts, [t.tolist() for t in true])["all"]
    assert (map_50.value(), avg_iou.value(), soft_f1.value()) == pytest.approx(
        (expected["map_50"], expected["avg_iou"], expected["soft_f1"])
    )


def test_benchmarks_name_their_real_source():
    assert benchmark_of("phrase_grounding", "mscxr-test_12") == PHRASE_MS
    assert benchmark_of("phrase_grounding", "padchest-test_3") == PHRASE_PAD
    assert benchmark_of("phrase_grounding", "x_1", source="PadChest-GR") == PHRASE_PAD
    assert benchmark_of("anatomical_grounding", "chestima-test_1") == ANATOMY_CIG
    assert benchmark_of("abnormality_grounding", "vindr-cxr-mono-test1_4") == ABNORMALITY_VINDR
    assert benchmark_of("abnormality_grounding", "nih-00000013_005-effusion") == ABNORMALITY_NIH
    # Synthetic rows say so, rows of unknown source claim no dataset, and a declared source is used as given.
    for task in ("anatomical_grounding", "abnormality_grounding", "phrase_grounding"):
        assert benchmark_of(task, "synthetic-test-00003") == f"{task}/synthetic"
        assert benchmark_of(task, "row_17") == task
    assert benchmark_of("anatomical_grounding", "x", source="My Hospital") == "anatomical_grounding/my-hospital"
    assert benchmark_of("report_generation", "mimic-test_1") == "report_generation"
    assert [benchmark_header(b) for b in (ANATOMY_CIG, ABNORMALITY_VINDR, PHRASE_MS, ABNORMALITY_NIH)] == [
        "Anatomy (Chest ImaGenome)",
        "Abnorm. (VinDr-CXR)",
        "Phrase_MS (MS-CXR)",
        "Abnorm. (NIH ChestX-ray14)",
    ]
    assert benchmark_header("anatomical_grounding/synthetic") == "Anatomy (synthetic)"
    assert benchmark_header("abnormality_grounding") == "Abnorm. (source not recorded)"
    assert benchmark_header("anatomical_grounding/my-hospital") == "Anatomy (my-hospital)"

    groups = group_rows([PHRASE_PAD, ANATOMY_CIG, PHRASE_PAD])
    assert list(groups) == [ANATOMY_CIG, PHRASE_PAD, ALL_GROUNDING]
    assert groups[PHRASE_PAD] == [0, 2] and groups[ALL_GROUNDING] == [0, 1, 2]
    assert list(group_rows(["abnormality_grounding"])) == ["abnormality_grounding"]
