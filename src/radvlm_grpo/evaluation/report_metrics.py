"""Report-generation metrics of Table 1 as bootstrap-ready statistics (see ``bootstrap.Statistic``).

Lexical metrics are computed here from ``radvlm_grpo.metrics.lexical``'s tokenisation: ROUGE-L (mean of per-report F), corpus
BLEU-4 and corpus GLEU (Google-BLEU) from per-report n-gram counts, so that every bootstrap resample gives the corpus
value of its pairs (they equal NLTK's ``corpus_bleu``/``corpus_gleu`` on the same tokens, which the tests check).
CheXbert F1 is computed from per-report condition labels (micro and macro over the 14 conditions and the usual 5),
as f1chexbert's "rrg" mode does with scikit-learn (a class without any positive scores F1 0). The clinical scorers
that produce labels, BERTScore, RadGraph-F1 and RadCliQ live in ``radvlm_grpo.scorers``; ``clinical.py`` calls them.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence

import numpy as np
from nltk.util import everygrams, ngrams

from radvlm_grpo.evaluation.bootstrap import Statistic, mean_statistic, ratio_of_sums
from radvlm_grpo.metrics.lexical import rouge_l_scores, tokenize_13a
from radvlm_grpo.scorers.chexbert import CONDITIONS, CONDITIONS_5

# CheXbert's condition order (f1chexbert 0.0.2) and the five conditions of the "5" scores.
CHEXBERT_CONDITIONS, CHEXBERT_TOP5 = CONDITIONS, CONDITIONS_5

_LOG_TINY = float(np.log(sys.float_info.min))  # NLTK's method0 stand-in for a zero n-gram precision


def _references(reference: str | Sequence[str]) -> list[str]:
    return [reference] if isinstance(reference, str) else [r for r in reference if isinstance(r, str)]


def _check(predictions: Sequence[str], references: Sequence[object]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references.")


# ---------------------------------------------------------------------------------------------------------------------
# Lexical
# ---------------------------------------------------------------------------------------------------------------------


def rouge_l_statistic(predictions: Sequence[str], references: Sequence[object]) -> Statistic:
    return mean_statistic("rouge_l", rouge_l_scores(predictions, references))


def length_statistic(predictions: Sequence[str]) -> Statistic:
    """Average number of characters of the answers (Table 3's ANC, which exposes length collapse)."""
    return mean_statistic("avg_chars", [len(p) if isinstance(p, str) else 0 for p in predictions])


def _bleu_counts(hypothesis: list[str], references: list[list[str]], max_order: int) -> list[float]:
    """NLTK's per-sentence contributions to corpus BLEU: clipped matches, max(1, n-grams) per order, lengths."""
    matches, totals = [], []
    for n in range(1, max_order + 1):
        counts = Counter(ngrams(hypothesis, n)) if len(hypothesis) >= n else Counter()
        best: dict[tuple, int] = {}
        for reference in references:
            ref_counts = Counter(ngrams(reference, n)) if len(reference) >= n else Counter()
            for gram in counts:
                best[gram] = max(best.get(gram, 0), ref_counts[gram])
        matches.append(sum(min(c, best[g]) for g, c in counts.items()))
        totals.append(max(1, sum(counts.values())))
    hyp_len = len(hypothesis)
    ref_len = min((len(r) for r in references), key=lambda r: (abs(r - hyp_len), r)) if references else 0
    return [*matches, *totals, hyp_len, ref_len]


def _bleu_finalize(max_order: int):
    def finalize(sums: np.ndarray) -> np.ndarray:
        matches, totals = sums[..., :max_order], sums[..., max_order : 2 * max_order]
        hyp_len, ref_len = sums[..., 2 * max_order], sums[..., 2 * max_order + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.where(matches > 0, np.log(np.maximum(matches, 1e-300) / np.maximum(totals, 1)), _LOG_TINY)
            bp = np.where(hyp_len > ref_len, 1.0, np.exp(1 - ref_len / np.maximum(hyp_len, 1e-300)))
        bp = np.where(hyp_len == 0, 0.0, bp)
        score = bp * np.exp(logs.mean(axis=-1))
        return np.where(matches[..., 0] == 0, 0.0, score)

    return finalize


def bleu_statistic(predictions: Sequence[str], references: Sequence[object], max_order: int = 4) -> Statistic:
    """Corpus BLEU-``max_order`` on mteval-13a tokens, unsmoothed: ``lexical.corpus_bleu`` as a resamplable sum."""
    _check(predictions, references)
    rows = [
        _bleu_counts(
            tokenize_13a(p),
            [tokenize_13a(r) for r in _references(ref)],
            max_order,
        )
        for p, ref in zip(predictions, references)
    ]
    samples = np.asarray(rows, dtype=np.float64).reshape(len(rows), 2 * max_order + 2)
    return Statistic(f"bleu{'' if max_order == 4 else max_order}", samples, _bleu_finalize(max_order))


def gleu_statistic(predictions: Sequence[str], references: Sequence[object], max_len: int = 4) -> Statistic:
    """Corpus Google-BLEU (``evaluate``'s google_bleu = ``lexical.google_bleu``) as a resamplable sum."""
    _check(predictions, references)
    rows = []
    for p, ref in zip(predictions, references):
        hyp = Counter(everygrams(tokenize_13a(p), 1, max_len))
        candidates = []
        for r in _references(ref):
            ref_grams = Counter(everygrams(tokenize_13a(r), 1, max_len))
            n_all = max(sum(hyp.values()), sum(ref_grams.values()))
            if n_all > 0:
                candidates.append((sum((ref_grams & hyp).values()), n_all))
        rows.append(max(candidates, key=lambda c: c[0] / c[1]) if candidates else (0, 0))
    samples = np.asarray(rows, dtype=np.float64).reshape(len(rows), 2)
    return Statistic("gleu", samples, ratio_of_sums)


def lexical_statistics(predictions: Sequence[str], references: Sequence[object]) -> list[Statistic]:
    return [
        rouge_l_statistic(predictions, references),
        bleu_statistic(predictions, references),
        gleu_statistic(predictions, references),
        length_statistic(predictions),
    ]


# ---------------------------------------------------------------------------------------------------------------------
# CheXbert F1 from labels
# ---------------------------------------------------------------------------------------------------------------------


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    den = 2 * tp + fp + fn
    return np.divide(2 * tp, den, out=np.zeros_like(den, dtype=np.float64), where=den > 0)


def _chexbert_finalize(columns: Sequence[int], average: str):
    columns = list(columns)

    def finalize(sums: np.ndarray) -> np.ndarray:
        counts = sums.reshape(*sums.shape[:-1], -1, 3)[..., columns, :]
        tp, fp, fn = counts[..., 0], counts[..., 1], counts[..., 2]
        if average == "micro":
            return _f1(tp.sum(-1), fp.sum(-1), fn.sum(-1))
        return _f1(tp, fp, fn).mean(-1)

    return finalize


def chexbert_counts(hyp_labels: np.ndarray, ref_labels: np.ndarray) -> np.ndarray:
    """Per-report (TP, FP, FN) of each condition, flattened to (n, 3 * n_conditions), from 0/1 label matrices."""
    hyp = np.asarray(hyp_labels, dtype=bool)
    ref = np.asarray(ref_labels, dtype=bool)
    if hyp.shape != ref.shape or hyp.ndim != 2:
        raise ValueError(f"Label matrices must both be (n, conditions); got {hyp.shape} and {ref.shape}.")
    return np.stack([hyp & ref, hyp & ~ref, ~hyp & ref], axis=-1).reshape(len(hyp), -1).astype(np.float64)


def chexbert_statistics(
    hyp_labels: np.ndarray, ref_labels: np.ndarray, conditions: Sequence[str] = CHEXBERT_CONDITIONS
) -> list[Statistic]:
    """CheXbert micro/macro F1 over all conditions ("14") and the top five ("5"), from binary labels (n, C)."""
    counts = chexbert_counts(hyp_labels, ref_labels)
    if counts.shape[1] != 3 * len(conditions):
        raise ValueError(f"Labels have {counts.shape[1] // 3} conditions; expected {len(conditions)}.")
    top5 = [conditions.index(c) for c in CHEXBERT_TOP5 if c in conditions]
    everything = range(len(conditions))
    return [
        Statistic("chexbert_micro_f1_14", counts, _chexbert_finalize(everything, "micro")),
        Statistic("chexbert_macro_f1_14", counts, _chexbert_finalize(everything, "macro")),
        Statistic("chexbert_micro_f1_5", counts, _chexbert_finalize(top5, "micro")),
        Statistic("chexbert_macro_f1_5", counts, _chexbert_finalize(top5, "macro")),
    ]


def chexbert_per_condition(
    hyp_labels: np.ndarray, ref_labels: np.ndarray, conditions: Sequence[str] = CHEXBERT_CONDITIONS
) -> dict[str, dict[str, float]]:
    """F1 and support (reference positives) of each condition: what the per-condition figure shows."""
    counts = chexbert_counts(hyp_labels, ref_labels).sum(0).reshape(-1, 3)
    f1 = _f1(counts[:, 0], counts[:, 1], counts[:, 2])
    return {c: {"f1": float(f1[i]), "support": int(counts[i, 0] + counts[i, 2])} for i, c in enumerate(conditions)}
