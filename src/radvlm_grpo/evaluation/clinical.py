"""The clinical report metrics of Table 1, through the project's scorers (``radvlm_grpo.scorers``).

A thin adapter: each metric names the scorer that computes it, checks before generation that its weights load (missing files stop the run in seconds,
one error naming every metric that lacks its weights, instead of after hours of generation), records which weights
were read (``provenance``), and turns the scorer's per-report output into bootstrap statistics. A metric is left out only when the user says so
(``--skip_metrics``), or, for GREEN, when no judge model is given; either way ``metrics.json`` and the tables record
what was not computed and why.

Settings, as the paper evaluated (method.md 4.2): BERTScore with distilbert-base-uncased, layer 5, rescaled, no idf;
CheXbert "rrg" labels, F1 over 14 and 5 conditions; RadGraph-F1 with RadGraph-XL at the three levels (an empty answer
or reference scores 0); RadCliQ-v1 with an answer or reference of 5 characters or fewer scored 3 (the penalty);
GREEN with the given judge (``green_score`` package), mean over the reports it could parse.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from radvlm_grpo.evaluation.bootstrap import Statistic, mean_statistic
from radvlm_grpo.evaluation.report_metrics import chexbert_per_condition, chexbert_statistics
from radvlm_grpo.metrics.thinking import REWARD_MAX_CHARS, is_too_short

logger = logging.getLogger(__name__)

# Metric family -> the statistics it produces.
CLINICAL_METRICS: dict[str, tuple[str, ...]] = {
    "bertscore": ("bertscore",),
    "chexbert": ("chexbert_micro_f1_14", "chexbert_macro_f1_14", "chexbert_micro_f1_5", "chexbert_macro_f1_5"),
    "radgraph": ("radgraph_simple", "radgraph_partial", "radgraph_complete"),
    "radcliq": ("radcliq_v1",),
    "green": ("green",),
}
RADCLIQ_EMPTY_PENALTY = 3.0  # RadCliQ of an answer or reference of <= 5 characters (lower is better)
RADGRAPH_MODEL = "radgraph-xl"
SKIPPED = "skipped with --skip_metrics"


class ScorerUnavailable(RuntimeError):
    """Requested clinical metrics cannot be computed (their scorers or weights are missing): all of them, at once."""

    def __init__(self, failures: Mapping[str, object]):
        self.metrics = list(failures)
        lines = "".join(f"\n- {m} ({', '.join(CLINICAL_METRICS[m])}): {reason}" for m, reason in failures.items())
        super().__init__(
            f"Cannot compute {len(self.metrics)} clinical metric(s):{lines}\n"
            "Provide their weights (--scorers_dir, or the Hub cache), or pass "
            f"`--skip_metrics {' '.join(self.metrics)}` to evaluate without them."
        )


@dataclass
class ClinicalPlan:
    """Which clinical metrics run, the scorers already loaded for them, what is left out and why, and the weights
    each metric's scorers read (``provenance.scorer_weights``)."""

    run: list[str]
    not_computed: dict[str, str]
    scorers: dict[str, object] = field(default_factory=dict)
    weights: dict[str, list[dict]] = field(default_factory=dict)


def _device(args) -> str | None:
    return getattr(args, "scorer_device", None)


def _load_bertscore(args, device, loaded):
    from radvlm_grpo.scorers.bertscore import EVAL_MODEL, BERTScore

    return BERTScore(EVAL_MODEL, weights_dir=args.scorers_dir, device=device)


def _load_chexbert(args, device, loaded):
    from radvlm_grpo.scorers.chexbert import CheXbert

    return CheXbert(weights_dir=args.scorers_dir, device=device)


def _load_radgraph(args, device, loaded):
    from radvlm_grpo.scorers.radgraph import RadGraph

    # weights_dir (not a resolved model_dir): a folder without RadGraph-XL then says what is missing and how to get it.
    return RadGraph(model_type=RADGRAPH_MODEL, weights_dir=args.scorers_dir, device=device)


def _load_radcliq(args, device, loaded):
    from radvlm_grpo.scorers.radcliq import RadCliQ

    # RadGraph-XL and CheXbert are the same models as the Table 1 metrics': share them when those run too.
    shared = {name: loaded[name] for name in ("radgraph", "chexbert") if name in loaded}
    return RadCliQ(RADGRAPH_MODEL, weights_dir=args.scorers_dir, device=device, **shared)


def _load_green(args, device, loaded):
    try:
        from green_score import GREEN
    except ImportError as error:
        raise ImportError("GREEN needs the `green_score` package (pip install green-score).") from error
    return GREEN(model_name=args.green_model, output_dir=args.output_dir, cpu=str(device or "").startswith("cpu"))


LOADERS: dict[str, Callable] = {
    "bertscore": _load_bertscore,
    "chexbert": _load_chexbert,
    "radgraph": _load_radgraph,
    "radcliq": _load_radcliq,
    "green": _load_green,
}


# RadCliQ reads the RadGraph-XL and CheXbert weights too: when those failed, it fails for the same reason.
_RADCLIQ_PARTS = ("radgraph", "chexbert")


def plan_clinical_metrics(args) -> ClinicalPlan:
    """Check every requested scorer by loading it on the CPU; raise one ``ScorerUnavailable`` naming every metric
    that cannot be computed, so a user fixes them all in one go instead of one per run.

    Scorers stay loaded when they will run on the CPU anyway; on a GPU machine they are loaded again after generation,
    so that they do not take memory from the generator. The weights each scorer read are recorded with their hashes.
    """
    from radvlm_grpo.evaluation.provenance import scorer_weights

    run, not_computed, scorers, weights, failures = [], {}, {}, {}, {}
    on_cpu = (_device(args) or ("cuda" if _cuda() else "cpu")).startswith("cpu")
    for metric in CLINICAL_METRICS:
        if metric in args.skip_metrics:
            not_computed[metric] = SKIPPED
            continue
        if metric == "green" and not args.green_model:
            not_computed[metric] = "no --green_model given"
            continue
        if metric == "green":  # a 7B judge: only check that the package is there
            try:
                import green_score  # noqa: F401
            except ImportError:
                failures[metric] = "the `green_score` package is not installed (pip install green-score)."
                continue
            run.append(metric)
            weights[metric] = scorer_weights(metric, None, green_model=args.green_model)
            continue
        missing_parts = [part for part in _RADCLIQ_PARTS if part in failures] if metric == "radcliq" else []
        if missing_parts:
            failures[metric] = f"it needs the {' and '.join(missing_parts)} weights, missing above."
            continue
        try:
            scorer = LOADERS[metric](args, "cpu", scorers)
        except (ImportError, OSError, ValueError) as error:
            failures[metric] = error
            continue
        run.append(metric)
        scorers[metric] = scorer
        weights[metric] = scorer_weights(metric, scorer, weights_dir=args.scorers_dir)
    if failures:
        raise ScorerUnavailable(failures)
    if not on_cpu:
        scorers.clear()
        gc.collect()
    return ClinicalPlan(run, not_computed, scorers, weights)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _scorer(plan: ClinicalPlan, metric: str, args):
    if metric not in plan.scorers:
        plan.scorers[metric] = LOADERS[metric](args, _device(args), plan.scorers)
    return plan.scorers[metric]


def _short_pairs(predictions: Sequence[str], references: Sequence[str]) -> np.ndarray:
    return np.array([is_too_short(p) or is_too_short(r) for p, r in zip(predictions, references)], dtype=bool)


def bertscore_statistics(scorer, predictions, references) -> list[Statistic]:
    return [mean_statistic("bertscore", scorer.f1(predictions, references))]


def chexbert_outputs(scorer, predictions, references) -> tuple[list[Statistic], dict]:
    labels = scorer.labels(list(predictions) + list(references))
    hyp, ref = labels[: len(predictions)], labels[len(predictions) :]
    return chexbert_statistics(hyp, ref), {"chexbert_per_condition": chexbert_per_condition(hyp, ref)}


def radgraph_statistics(scorer, predictions, references) -> list[Statistic]:
    """RadGraph-F1 at the three levels, as upstream ``F1RadGraph`` (a pair with an empty side scores 0)."""
    from radvlm_grpo.scorers.radgraph import LEVELS, F1RadGraph

    _, per_level, _, _ = F1RadGraph(radgraph=scorer)(list(predictions), list(references), level="all")
    return [mean_statistic(f"radgraph_{level}", values) for level, values in zip(LEVELS, per_level)]


def radcliq_statistics(scorer, predictions, references) -> list[Statistic]:
    """RadCliQ-v1 as the authors' worker scores it: lowercased, first 2,048 characters, 3 for a too-short text."""
    short = _short_pairs(predictions, references)
    values = np.full(len(predictions), RADCLIQ_EMPTY_PENALTY)
    scored = np.flatnonzero(~short)
    if len(scored):
        hyps = [predictions[i][:REWARD_MAX_CHARS].lower() for i in scored]
        refs = [references[i][:REWARD_MAX_CHARS].lower() for i in scored]
        values[scored] = scorer.score(hyps, refs)
    return [mean_statistic("radcliq_v1", values)]


def green_statistics(scorer, predictions, references) -> list[Statistic]:
    _, _, scores, *_ = scorer(list(references), list(predictions))
    values = np.array([np.nan if s is None else float(s) for s in scores])
    if np.isnan(values).any():
        logger.warning(f"GREEN could not parse {int(np.isnan(values).sum())} judge answers; they are left out.")
    return [mean_statistic("green", values)]


def clinical_statistics(
    predictions: Sequence[str], references: Sequence[str], plan: ClinicalPlan, args
) -> tuple[list[Statistic], dict]:
    """Statistics of every planned clinical metric, and extras (CheXbert per condition) for the figures."""
    statistics, extras = [], {}
    for metric in plan.run:
        scorer = _scorer(plan, metric, args)
        logger.info(f"Scoring {len(predictions)} reports with {metric}")
        if metric == "chexbert":
            found, more = chexbert_outputs(scorer, predictions, references)
            statistics += found
            extras |= more
        else:
            compute = {
                "bertscore": bertscore_statistics,
                "radgraph": radgraph_statistics,
                "radcliq": radcliq_statistics,
                "green": green_statistics,
            }[metric]
            statistics += compute(scorer, predictions, references)
    return statistics, extras
