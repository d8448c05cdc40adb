"""The clinical report rewards: ``radcliq`` (the paper's), ``bertscore`` and ``radgraph_f1`` (its ablations).

The registry (``radvlm_grpo.rewards.registry``) names them (``get_reward_funcs(["radcliq"])``) and follow the authors'
reward workers (method.md 2.1, 2.4; spec README item 6):

- the answer is the completion, or for thinking data the text after the last ``</think>``; answer and reference are
  cut to their first 2048 characters (``report_max_chars``) and lowercased: RadGraph's cost grows faster than the
  text's length, so the cut also keeps a babbling policy from stalling a step;
- ``radcliq`` = -RadCliQ-v1 (higher is better); -3 when a thinking completion has no ``</think>``, when the answer or
  the reference is 5 characters or shorter, or when scoring fails;
- ``bertscore`` = BERTScore F1 (distilbert-base-uncased, layer 5, rescaled, idf off), ``radgraph_f1`` = RadGraph-F1
  at the complete level (RadGraph-XL); both give 0.0 in those cases.

Unlike the authors' 32 HTTP workers scoring one pair per call, a reward scores the whole GRPO batch in one batched
pass per model, in the training process, on ``scorer_device`` (default: the process's own GPU, else the CPU): each
distinct reference and completion is encoded once, identical pairs are scored once, and reference encodings stay in
a bounded cache across steps. If the batched pass fails, each pair is retried alone so that one bad pair costs only
its own penalty. RadCliQ's sub-scores (radgraph, bertscore, semb, bleu) are logged per step through TRL's
``log_metric`` as ``radcliq/<feature>``.

Reward options (also ``get_reward_funcs`` keywords): ``thinking``, ``report_occurrence``, ``scorer_device``,
``scorer_weights_dir`` (a local weights folder; see ``radvlm_grpo.scorers._weights``), ``radgraph_model``
("radgraph-xl" or "radgraph"), ``scorer_batch_size``, ``scorer_cache_size``, ``report_max_chars`` (default 2048,
the paper's; a positive number of characters) and ``scorer_dtype``: "float32" (default, exact), "tf32" or "bfloat16"
for CheXbert and BERTScore in ``radcliq`` and ``bertscore`` (``radvlm_grpo.scorers.precision``; RadGraph, and so
``radgraph_f1``, stays float32).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from radvlm_grpo.metrics.thinking import (
    ABLATION_PENALTY,
    LAST,
    RADCLIQ_PENALTY,
    REWARD_MAX_CHARS,
    Occurrence,
    is_too_short,
)
from radvlm_grpo.rewards.base import RewardBase, RewardFunc
from radvlm_grpo.scorers.precision import FLOAT32, check_scorer_dtype
from radvlm_grpo.vocab.schema import REPORT_GENERATION

logger = logging.getLogger(__name__)

DEFAULT_RADGRAPH_MODEL = "radgraph-xl"
DEFAULT_BATCH_SIZE = 32
DEFAULT_CACHE_SIZE = 1024

# One scorer per configuration and process, shared by every reward that needs it (e.g. train and eval rewards).
_SCORERS: dict[tuple, object] = {}


def preprocess(text: str, max_chars: int = REWARD_MAX_CHARS) -> str:
    """The authors' worker preprocessing: the first ``max_chars`` (2048) characters, lowercased."""
    return text[:max_chars].lower()


def _check_max_chars(max_chars: int) -> int:
    if isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars <= 0:
        raise ValueError(f"report_max_chars must be a positive integer (the paper's is 2048); got {max_chars!r}.")
    return max_chars


# --- scorers: (predictions, references) -> (scores, sub-scores) ------------------------------------------------------


class _RadCliQScorer:
    """Per pair -RadCliQ-v1 and its four features."""

    def __init__(
        self,
        radgraph_model: str,
        weights_dir: str | None,
        device: str | None,
        batch_size: int,
        cache: int,
        dtype: str = FLOAT32,
    ):
        from radvlm_grpo.scorers.precision import set_scorer_dtype
        from radvlm_grpo.scorers.radcliq import RadCliQ

        self.radcliq = RadCliQ(radgraph_model, weights_dir, device, batch_size, cache)
        set_scorer_dtype(self.radcliq, dtype)

    def __call__(self, preds: list[str], refs: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        from radvlm_grpo.scorers.radcliq import radcliq_from_features

        f = self.radcliq.features(preds, refs)
        return -radcliq_from_features(f["radgraph"], f["bertscore"], f["semb"], f["bleu"]), f


class _BERTScoreScorer:
    """BERTScore F1 with reference embeddings cached across steps."""

    def __init__(self, weights_dir: str | None, device: str | None, batch_size: int, cache: int, dtype: str = FLOAT32):
        from radvlm_grpo.scorers._cache import LRUCache
        from radvlm_grpo.scorers.bertscore import EVAL_MODEL, BERTScore
        from radvlm_grpo.scorers.precision import set_scorer_dtype

        self.bertscore = BERTScore(EVAL_MODEL, weights_dir=weights_dir, device=device, batch_size=batch_size)
        set_scorer_dtype(self.bertscore, dtype)
        self.cache = LRUCache(cache)

    def __call__(self, preds: list[str], refs: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        from radvlm_grpo.scorers._cache import encode_with_cache

        known = encode_with_cache(refs, preds, self.cache, self.bertscore.embed)
        result = self.bertscore.score_embeddings([known[p] for p in preds], [known[r] for r in refs])
        return result.f1.astype(np.float64), {}


class _RadGraphF1Scorer:
    """RadGraph-F1 at the complete level with reference parses cached across steps."""

    def __init__(self, radgraph_model: str, weights_dir: str | None, device: str | None, batch_size: int, cache: int):
        from radvlm_grpo.scorers._cache import LRUCache
        from radvlm_grpo.scorers.radcliq import radgraph_model_dir
        from radvlm_grpo.scorers.radgraph import RadGraph

        model_dir = radgraph_model_dir(radgraph_model, weights_dir)
        self.radgraph = RadGraph(radgraph_model, model_dir, device, batch_size, weights_dir)
        self.cache = LRUCache(cache)

    def __call__(self, preds: list[str], refs: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        from radvlm_grpo.scorers._cache import encode_with_cache
        from radvlm_grpo.scorers.radgraph import radgraph_f1

        known = encode_with_cache(refs, preds, self.cache, self.radgraph.annotate)
        scores = [radgraph_f1(known[p], known[r], "complete") for p, r in zip(preds, refs)]
        return np.array(scores, dtype=np.float64), {}


def get_scorer(kind: str, **config) -> Callable:
    """The shared scorer of this kind and configuration, built on first use."""
    key = (kind, *sorted(config.items()))
    if key not in _SCORERS:
        if kind == "radcliq":
            _SCORERS[key] = _RadCliQScorer(**config)
        elif kind == "bertscore":
            _SCORERS[key] = _BERTScoreScorer(**config)
        elif kind == "radgraph_f1":
            _SCORERS[key] = _RadGraphF1Scorer(**config)
        else:
            raise ValueError(f"Unknown clinical scorer {kind!r}.")
    return _SCORERS[key]


# --- the reward ------------------------------------------------------------------------------------------------------


class ClinicalReward(RewardBase):
    """A report reward scored by a clinical model on the lowercased answer and reference, cut to ``max_chars``."""

    def __init__(
        self,
        name: str,
        scorer_config: dict,
        thinking: bool = False,
        occurrence: Occurrence = LAST,
        penalty: float = RADCLIQ_PENALTY,
        tasks: Sequence[str] | None = (REPORT_GENERATION,),
        max_chars: int = REWARD_MAX_CHARS,
    ) -> None:
        super().__init__(name, tasks, thinking, occurrence, penalty)
        self.max_chars = _check_max_chars(max_chars)
        self.scorer_config = dict(scorer_config)
        self._scorer = get_scorer(name, **self.scorer_config)  # load now: missing weights fail before training

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_scorer"] = None  # models stay out of pickles; the copy reloads (or reuses) them on first call
        return state

    @property
    def scorer(self) -> Callable:
        if self._scorer is None:
            self._scorer = get_scorer(self.__name__, **self.scorer_config)
        return self._scorer

    def _score(self, preds: list[str], refs: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """Scores, sub-scores and a failure mask; a failed batch is retried pair by pair."""
        try:
            scores, subs = self.scorer(preds, refs)
            return np.asarray(scores, dtype=np.float64), subs, np.zeros(len(preds), dtype=bool)
        except Exception as error:  # noqa: BLE001  (the authors: any scoring exception is a penalty)
            logger.warning("%s: batched scoring failed (%s); scoring pairs one by one.", self.__name__, error)
        scores, failed, subs = np.zeros(len(preds)), np.zeros(len(preds), dtype=bool), {}
        for i, (p, r) in enumerate(zip(preds, refs)):
            try:
                value, sub = self.scorer([p], [r])
                scores[i] = float(np.asarray(value)[0])
                for key, v in sub.items():
                    subs.setdefault(key, np.full(len(preds), np.nan))[i] = float(np.asarray(v)[0])
            except Exception as error:  # noqa: BLE001
                logger.warning("%s: scoring failed for one pair (%s).", self.__name__, error)
                failed[i] = True
        return scores, subs, failed

    def __call__(self, completions: Sequence[object], log_metric: Callable | None = None, **columns) -> list:
        rewards: list[float | None] = [None] * len(completions)
        rows, preds, refs, missing_think, penalized = [], [], [], [], []
        for i, answer, reference in self._report_rows(completions, columns):
            missing_think.append(answer is None)
            pred = preprocess(answer, self.max_chars) if answer is not None else None
            ref = preprocess(reference, self.max_chars)
            if pred is None or is_too_short(pred) or is_too_short(ref):
                rewards[i] = self.penalty
                penalized.append(1.0)
                continue
            rows.append(i)
            preds.append(pred)
            refs.append(ref)
        if rows:
            scores, subs, failed = self._score(preds, refs)
            for j, i in enumerate(rows):
                ok = not failed[j] and np.isfinite(scores[j])
                rewards[i] = float(scores[j]) if ok else self.penalty
                penalized.append(0.0 if ok else 1.0)
            for key, values in subs.items():
                values = np.asarray(values, dtype=np.float64)
                self._log(log_metric, key, values[np.isfinite(values) & ~failed])
            self._log(log_metric, "answer_chars_mean", [len(p) for p in preds])
            self._log(log_metric, "scoring_failed_frac", failed.astype(float))
        self._log(log_metric, "penalized_frac", penalized)
        if self.thinking:
            self._log(log_metric, "missing_think_frac", missing_think)
        self._log_per_task(log_metric, columns, rewards)
        return rewards


# --- factories --------------------------------------------------------------------------------------------------------


def _scorer_config(weights_dir, device, batch_size, cache_size, **model) -> dict:
    return dict(weights_dir=weights_dir, device=device, batch_size=int(batch_size), cache=int(cache_size), **model)


# One factory per reward, with explicit keyword options: the registry reads each signature to route recipe options.
def radcliq_reward(
    thinking: bool = False,
    report_occurrence: Occurrence = LAST,
    scorer_device: str | None = None,
    scorer_weights_dir: str | None = None,
    radgraph_model: str = DEFAULT_RADGRAPH_MODEL,
    scorer_batch_size: int = DEFAULT_BATCH_SIZE,
    scorer_cache_size: int = DEFAULT_CACHE_SIZE,
    report_max_chars: int = REWARD_MAX_CHARS,
    scorer_dtype: str = FLOAT32,
) -> RewardFunc:
    config = _scorer_config(
        scorer_weights_dir, scorer_device, scorer_batch_size, scorer_cache_size, radgraph_model=radgraph_model
    )
    config["dtype"] = check_scorer_dtype(scorer_dtype)
    return ClinicalReward("radcliq", config, thinking, report_occurrence, RADCLIQ_PENALTY, max_chars=report_max_chars)


def bertscore_reward(
    thinking: bool = False,
    report_occurrence: Occurrence = LAST,
    scorer_device: str | None = None,
    scorer_weights_dir: str | None = None,
    scorer_batch_size: int = DEFAULT_BATCH_SIZE,
    scorer_cache_size: int = DEFAULT_CACHE_SIZE,
    report_max_chars: int = REWARD_MAX_CHARS,
    scorer_dtype: str = FLOAT32,
) -> RewardFunc:
    config = _scorer_config(scorer_weights_dir, scorer_device, scorer_batch_size, scorer_cache_size)
    config["dtype"] = check_scorer_dtype(scorer_dtype)
    return ClinicalReward(
        "bertscore", config, thinking, report_occurrence, ABLATION_PENALTY, max_chars=report_max_chars
    )


def radgraph_f1_reward(
    thinking: bool = False,
    report_occurrence: Occurrence = LAST,
    scorer_device: str | None = None,
    scorer_weights_dir: str | None = None,
    radgraph_model: str = DEFAULT_RADGRAPH_MODEL,
    scorer_batch_size: int = DEFAULT_BATCH_SIZE,
    scorer_cache_size: int = DEFAULT_CACHE_SIZE,
    report_max_chars: int = REWARD_MAX_CHARS,
    scorer_dtype: str = FLOAT32,
) -> RewardFunc:
    if check_scorer_dtype(scorer_dtype) != FLOAT32:
        raise ValueError(
            f"radgraph_f1 runs RadGraph in float32 only (scorer_dtype {scorer_dtype!r} applies to CheXbert and "
            "BERTScore): RadGraph's span and relation decisions change ranks in lower precision."
        )
    config = _scorer_config(
        scorer_weights_dir, scorer_device, scorer_batch_size, scorer_cache_size, radgraph_model=radgraph_model
    )
    return ClinicalReward(
        "radgraph_f1", config, thinking, report_occurrence, ABLATION_PENALTY, max_chars=report_max_chars
    )
