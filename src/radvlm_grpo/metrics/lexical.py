"""Lexical scores for the paper's GLEU ablation and the demo: GLEU (Google-BLEU), BLEU and ROUGE-L.

The n-gram arithmetic is the libraries': NLTK's ``gleu_score``/``bleu_score`` and Google's ``rouge-score``. GLEU
matches ``evaluate.load("google_bleu")`` (which the authors' GLEU reward called on one pair at a time): ``evaluate``
tokenises with the ``13a`` tokenizer of mteval-v13a (WMT's reference tokenizer, as in SacreBLEU) and hands the tokens
to NLTK's ``corpus_gleu``. The ``13a`` rules are re-stated here because ``evaluate`` keeps them inside a Hub script that
cannot be loaded offline. BLEU uses the same tokens; ROUGE-L uses rouge-score's own tokenizer, as ``evaluate``'s rouge.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from functools import lru_cache

from nltk.translate.bleu_score import SmoothingFunction
from nltk.translate.bleu_score import corpus_bleu as _nltk_corpus_bleu
from nltk.translate.bleu_score import sentence_bleu as _nltk_sentence_bleu
from nltk.translate.gleu_score import corpus_gleu as _nltk_corpus_gleu
from rouge_score import rouge_scorer

References = Sequence[str | Sequence[str]]

# mteval-v13a, language-dependent part: split off punctuation and symbols; split "." and "," unless they sit between
# digits (so 0.35 and 1,000 stay whole); split a dash that follows a digit.
_13A_RULES = (
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
)
_13A_ENTITIES = (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">"))


@lru_cache(maxsize=2**16)
def _tokenize_13a_cached(text: str) -> tuple[str, ...]:
    text = text.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in text:
        for entity, char in _13A_ENTITIES:
            text = text.replace(entity, char)
    text = f" {text} "
    for pattern, replacement in _13A_RULES:
        text = pattern.sub(replacement, text)
    return tuple(text.split())


def tokenize_13a(text: str) -> list[str]:
    """mteval-v13a tokens, as ``evaluate``'s google_bleu and bleu (and SacreBLEU's default) tokenise."""
    return list(_tokenize_13a_cached(text if isinstance(text, str) else ""))


def _references_of(reference: str | Sequence[str]) -> list[str]:
    return [reference] if isinstance(reference, str) else [r for r in reference if isinstance(r, str)]


def _check_lengths(predictions: Sequence[str], references: References) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references.")


def google_bleu(predictions: Sequence[str], references: References, min_len: int = 1, max_len: int = 4) -> float:
    """Corpus GLEU exactly as ``evaluate.load("google_bleu").compute(...)["google_bleu"]``."""
    _check_lengths(predictions, references)
    refs = [[_tokenize_13a_cached(r) for r in _references_of(ref)] for ref in references]
    hyps = [_tokenize_13a_cached(p if isinstance(p, str) else "") for p in predictions]
    return float(_nltk_corpus_gleu(refs, hyps, min_len=min_len, max_len=max_len))


def gleu_scores(predictions: Sequence[str], references: References, min_len: int = 1, max_len: int = 4) -> list[float]:
    """Sentence GLEU of each pair: what the authors' reward got from ``google_bleu`` called on one pair."""
    _check_lengths(predictions, references)
    return [google_bleu([p], [r], min_len, max_len) for p, r in zip(predictions, references)]


def _bleu_setup(max_order: int, smooth: bool) -> tuple[tuple[float, ...], object]:
    if max_order < 1:
        raise ValueError(f"max_order must be at least 1; got {max_order}.")
    smoothing = SmoothingFunction()
    return (1.0 / max_order,) * max_order, (smoothing.method1 if smooth else smoothing.method0)


def bleu_scores(
    predictions: Sequence[str], references: References, max_order: int = 4, smooth: bool = True
) -> list[float]:
    """Sentence BLEU-``max_order`` of each pair on ``13a`` tokens (NLTK; ``smooth`` is its method1, epsilon 0.1).

    Unsmoothed sentence BLEU is 0 whenever one n-gram order has no match, a poor reward for short texts, hence the
    default. NLTK's warnings about zero counts are silenced: a 0 is the expected answer there.
    """
    _check_lengths(predictions, references)
    weights, smoothing = _bleu_setup(max_order, smooth)
    scores = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for p, r in zip(predictions, references):
            refs = [_tokenize_13a_cached(x) for x in _references_of(r)]
            hyp = _tokenize_13a_cached(p if isinstance(p, str) else "")
            if not hyp or not any(refs):
                scores.append(0.0)
                continue
            scores.append(float(_nltk_sentence_bleu(refs, hyp, weights=weights, smoothing_function=smoothing)))
    return scores


def corpus_bleu(predictions: Sequence[str], references: References, max_order: int = 4, smooth: bool = False) -> float:
    """Corpus BLEU-``max_order`` on ``13a`` tokens (NLTK), for evaluation tables."""
    _check_lengths(predictions, references)
    weights, smoothing = _bleu_setup(max_order, smooth)
    refs = [[_tokenize_13a_cached(x) for x in _references_of(r)] for r in references]
    hyps = [_tokenize_13a_cached(p if isinstance(p, str) else "") for p in predictions]
    if not any(hyps):
        return 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(_nltk_corpus_bleu(refs, hyps, weights=weights, smoothing_function=smoothing))


@lru_cache(maxsize=2)
def _rouge_l_scorer(use_stemmer: bool) -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


def rouge_l_scores(predictions: Sequence[str], references: References, use_stemmer: bool = False) -> list[float]:
    """ROUGE-L F-measure of each pair (rouge-score; best reference when several), as ``evaluate``'s rouge "rougeL".

    A GRPO batch repeats each reference once per generation and short answers repeat too, so each distinct pair is
    scored once (the LCS is quadratic in pure Python).
    """
    _check_lengths(predictions, references)
    scorer = _rouge_l_scorer(use_stemmer)
    cache: dict[tuple[str, tuple[str, ...]], float] = {}
    scores = []
    for p, r in zip(predictions, references):
        key = (p if isinstance(p, str) else "", tuple(_references_of(r)))
        if key not in cache:
            cache[key] = float(scorer.score_multi(list(key[1]), key[0])["rougeL"].fmeasure) if key[1] else 0.0
        scores.append(cache[key])
    return scores
