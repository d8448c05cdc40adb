"""RadCliQ-v1 (Yu et al. 2023): the paper's report reward is its negative. Lower RadCliQ is better.

RadCliQ-v1 standardises four per-pair features and combines them linearly with constants learnt by
CXR-Report-Metric (``radcliq-v1.pkl``; full precision from metrics.md section 4, not RadEval's 8-decimal copies):

- ``radgraph``: (entity F1 + relation F1) / 2 of the two RadGraph parses (``scorers.radgraph.entity_relation_f1``),
  with RadGraph-XL by default as the paper trained (``radgraph`` v1 for CXR-Report-Metric's original numbers);
- ``bertscore``: BERTScore F1, distilroberta-base layer 5, baseline-rescaled, idf off (idf from the batch's
  references collapses when one reference is scored against its G completions; metrics.md section 0);
- ``semb``: cosine of the two reports' CheXbert [CLS] embeddings;
- ``bleu``: per-sample BLEU-2 of the COCO scorer on whitespace tokens (RadEval's ``Bleu(n=2)``); its weight is
  about 1e-11, so it barely moves the score.

``RadCliQ`` batches the way a GRPO step needs: each distinct text is run through each model once per call (a batch
holds each reference G times), identical (hypothesis, reference) pairs are scored once, and reference features stay
in a bounded LRU cache across calls, so a reference seen again in a later step is not re-encoded.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from radvlm_grpo.scorers._cache import LRUCache, encode_with_cache
from radvlm_grpo.scorers._weights import resolve_device, weights_dir_or_env
from radvlm_grpo.scorers.bertscore import RADCLIQ_MODEL, BERTScore, SentenceEmbedding
from radvlm_grpo.scorers.chexbert import CheXbert, cosine_rows

FEATURES = ("radgraph", "bertscore", "semb", "bleu")
# RadCliQ-v1 StandardScaler and linear model (CXR-Report-Metric radcliq-v1.pkl), feature order FEATURES.
RADCLIQ_V1_MEAN = np.array([0.5379231241355762, 0.6175725628125001, 0.7647942121140658, 0.44738335396242174])
RADCLIQ_V1_SCALE = np.array([0.3028258411486429, 0.22430938459304575, 0.2539439110169773, 0.2989271671041838])
RADCLIQ_V1_COEFS = np.array([-0.37708368261038905, -0.37030009974480316, -0.25261621789593225, 4.315048405024756e-12])
RADCLIQ_V1_INTERCEPT = 2.4665525613232559e-10
DEFAULT_RADGRAPH_MODEL = "radgraph-xl"
BLEU_ORDER = 2


def radcliq_from_features(radgraph, bertscore, semb, bleu) -> np.ndarray | float:
    """RadCliQ-v1 from raw features (scalars or arrays): ``sum(coef * (x - mean) / scale) + intercept``."""
    scalar = all(np.ndim(x) == 0 for x in (radgraph, bertscore, semb, bleu))
    x = np.stack(
        np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (radgraph, bertscore, semb, bleu))), -1
    )
    value = ((x - RADCLIQ_V1_MEAN) / RADCLIQ_V1_SCALE) @ RADCLIQ_V1_COEFS + RADCLIQ_V1_INTERCEPT
    return float(value) if scalar else value


EXACT_MATCH_RADCLIQ = radcliq_from_features(1.0, 1.0, 1.0, 1.0)  # -1.44069..., the best a report can score


# --- BLEU as RadEval's RadCliQ computes it (COCO caption BleuScorer, per sample) ---------------------------------------


def _ngram_counts(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + k]) for k in range(1, n + 1) for i in range(len(words) - k + 1))


def coco_bleu(hyp: str, ref: str, n: int = BLEU_ORDER) -> float:
    """Per-sample BLEU-``n`` of the COCO caption scorer with one reference: clipped n-gram precisions on whitespace
    tokens, each smoothed as (matches + 1e-15) / (guesses + 1e-9), geometric mean, times the brevity penalty."""
    tiny, small = 1e-15, 1e-9
    hyp_words, ref_words = hyp.split(), ref.split()
    hyp_counts, ref_counts = _ngram_counts(hyp_words, n), _ngram_counts(ref_words, n)
    correct = [0] * n
    for gram, count in hyp_counts.items():
        correct[len(gram) - 1] += min(ref_counts.get(gram, 0), count)
    score = 1.0
    for k in range(n):
        score *= (correct[k] + tiny) / (max(0, len(hyp_words) - k) + small)
    score **= 1.0 / n
    ratio = (len(hyp_words) + tiny) / (len(ref_words) + small)
    if ratio < 1:
        score *= math.exp(1 - 1 / ratio)
    return score


def bleu_scores(hyps: Sequence[str], refs: Sequence[str], n: int = BLEU_ORDER) -> np.ndarray:
    """``coco_bleu`` of each pair."""
    return np.array([coco_bleu(h, r, n) for h, r in zip(hyps, refs)], dtype=np.float64)


# --- the scorer ----------------------------------------------------------------------------------------------------


@dataclass
class ReportFeatures:
    """What RadCliQ needs of one report, whatever it is compared with."""

    annotation: dict
    tokens: SentenceEmbedding
    cls: np.ndarray


def radgraph_model_dir(model_type: str, weights_dir: str | os.PathLike | None) -> str | None:
    """The weights folder's RadGraph model (``<model_type>/``, ``radgraph/<model_type>/`` or the downloaded archive;
    ``radvlm_grpo.scorers.radgraph.local_model``), else None (then the Hub archive is used)."""
    from radvlm_grpo.scorers.radgraph import local_model

    root = weights_dir_or_env(weights_dir)
    found = local_model(root, model_type) if root is not None else None
    return str(found) if found is not None else None


class RadCliQ:
    """RadCliQ-v1 of (hypothesis, reference) pairs, with the three models on one device.

    Args:
        radgraph_model: "radgraph-xl" (default, as the paper trained) or "radgraph" (CXR-Report-Metric's model).
        weights_dir: folder with local weights (``radgraph-xl/``, ``chexbert/chexbert.pth``,
            ``bertscore/distilroberta-base/``); anything missing comes from the Hub.
        device: "cpu", "cuda", "cuda:1"...; default: this process's GPU if any, else the CPU.
        batch_size: reports per forward pass of each model.
        cache_size: reference reports whose features are kept across calls (least recently used dropped first).
        radgraph, bertscore, chexbert: ready-made scorers (then ``weights_dir`` is not used for them).
    """

    def __init__(
        self,
        radgraph_model: str = DEFAULT_RADGRAPH_MODEL,
        weights_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 32,
        cache_size: int = 1024,
        radgraph=None,
        bertscore: BERTScore | None = None,
        chexbert: CheXbert | None = None,
    ) -> None:
        self.device = resolve_device(device)
        if radgraph is None:
            from radvlm_grpo.scorers.radgraph import RadGraph

            model_dir = radgraph_model_dir(radgraph_model, weights_dir)
            radgraph = RadGraph(radgraph_model, model_dir, self.device, batch_size, weights_dir)
        if bertscore is None:
            bertscore = BERTScore(RADCLIQ_MODEL, weights_dir=weights_dir, device=self.device, batch_size=batch_size)
        if chexbert is None:
            chexbert = CheXbert(weights_dir=weights_dir, device=self.device, batch_size=batch_size)
        self.radgraph, self.bertscore, self.chexbert = radgraph, bertscore, chexbert
        self.cache = LRUCache(cache_size)  # reference text -> ReportFeatures
        self.encoded_reports = 0  # reports run through the models (tests check dedup and caching with it)

    def clear_cache(self) -> None:
        self.cache.clear()

    def encode(self, reports: Sequence[str]) -> list[ReportFeatures]:
        """Features of each report, computed in one batched pass per model (no cache)."""
        reports = list(reports)
        if not reports:
            return []
        annotations = self.radgraph.annotate(reports)
        tokens = self.bertscore.embed(reports)
        cls = self.chexbert.embeddings(reports)
        self.encoded_reports += len(reports)
        return [ReportFeatures(a, t, c) for a, t, c in zip(annotations, tokens, cls)]

    def features(self, hyps: Sequence[str], refs: Sequence[str]) -> dict[str, np.ndarray]:
        """The four raw features of each pair (arrays keyed by ``FEATURES``)."""
        hyps = [h if isinstance(h, str) else "" for h in hyps]
        refs = [r if isinstance(r, str) else "" for r in refs]
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references.")
        pairs = list(dict.fromkeys(zip(hyps, refs)))
        if not pairs:
            return {k: np.zeros(0) for k in FEATURES}
        known = encode_with_cache([r for _, r in pairs], [h for h, _ in pairs], self.cache, self.encode)

        from radvlm_grpo.scorers.radgraph import entity_relation_f1

        hyp_f = [known[h] for h, _ in pairs]
        ref_f = [known[r] for _, r in pairs]
        per_pair = {
            "radgraph": np.array([entity_relation_f1(h.annotation, r.annotation) for h, r in zip(hyp_f, ref_f)]),
            "bertscore": self.bertscore.score_embeddings([h.tokens for h in hyp_f], [r.tokens for r in ref_f]).f1,
            "semb": cosine_rows(np.stack([h.cls for h in hyp_f]), np.stack([r.cls for r in ref_f])),
            "bleu": bleu_scores([h for h, _ in pairs], [r for _, r in pairs]),
        }
        index = {pair: i for i, pair in enumerate(pairs)}
        rows = [index[p] for p in zip(hyps, refs)]
        return {k: np.asarray(v, dtype=np.float64)[rows] for k, v in per_pair.items()}

    def score(self, hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
        """RadCliQ-v1 of each pair (lower is better)."""
        f = self.features(hyps, refs)
        return radcliq_from_features(f["radgraph"], f["bertscore"], f["semb"], f["bleu"])

    __call__ = score
