"""Demo rewards: simple, verifiable rewards for the tiny CPU model and synthetic data, never for real data.

The registry (``radvlm_grpo.rewards.registry``) names them (``get_reward_funcs(["digit_share"])``):

| name | handles | score | penalty |
|---|---|---|---|
| ``digit_share`` | every row | share of the answer's non-space characters that are digits (0 for an empty answer) | 0 |
| ``finding_f1`` | report generation | F1 of the findings read back from the answer against those of the reference | 0 |

``digit_share`` exists to check that the GRPO wiring learns (``tests/test_grpo_learns.py``): neither the random tiny
model nor the demo SFT model maximises it, and it can be read off any completion without a reference, so a rise of
its mean over a run is the policy moving towards the reward and nothing else. Flip its sign with TRL's
``reward_weights: [-1]`` to train against it.

``finding_f1`` stands in for RadCliQ on the synthetic data only: it understands nothing but the sentences that
``radvlm_grpo.data.synthetic_tasks`` writes. A finding is read back from a report as its kind with the attributes the
generator drew: ``("consolidation" | "nodule", side, zone)``, ``("effusion", "right" | "left" | "bilateral", size)``,
``("cardiomegaly",)``, ``("ett",)``, ``("pacemaker",)``; a sentence written twice is one finding, and the normal
sentences are none. The score of one report is ``2 TP / (2 TP + FP + FN)`` over those sets, the report's share of a
micro F1 over findings. A normal study has no finding to find: when neither side has one, the report scores
``finding_f1_empty`` (default 0, as soft-F1 scores "no box against no box"), so the normal template is never a free
win; a group of completions on a normal study then carries no gradient, and a hallucinated finding on it scores 0 too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence

from radvlm_grpo.data.synthetic_tasks import SIDES, SIZES, ZONES, finding_text
from radvlm_grpo.metrics.thinking import ABLATION_PENALTY, LAST, Occurrence
from radvlm_grpo.rewards.base import RewardBase, RewardFunc
from radvlm_grpo.vocab.schema import REPORT_GENERATION

Finding = tuple[str, ...]


def digit_share(text: str) -> float:
    """Digits over non-whitespace characters of ``text``; 0.0 when it has none."""
    chars = [c for c in text if not c.isspace()]
    return sum(c in "0123456789" for c in chars) / len(chars) if chars else 0.0


class DigitShareReward(RewardBase):
    """The share of digits in each answer; a thinking completion without ``</think>`` gets 0."""

    def __init__(
        self, thinking: bool = False, occurrence: Occurrence = LAST, tasks: Sequence[str] | None = None
    ) -> None:
        super().__init__("digit_share", tasks, thinking, occurrence, penalty=0.0)

    def __call__(self, completions: Sequence[object], log_metric: Callable | None = None, **columns) -> list:
        n = len(completions)
        handled = self._handled(columns, n)
        answers = self._answers(completions)
        rewards: list[float | None] = [
            (digit_share(a) if a is not None else self.penalty) if handled[i] else None for i, a in enumerate(answers)
        ]
        self._log(log_metric, "answer_chars_mean", [len(a) for a, h in zip(answers, handled) if h and a is not None])
        return rewards


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^a-z ]", " ", text.lower()).split())


@functools.cache
def _finding_sentences() -> dict[str, Finding]:
    """Each finding sentence the synthetic generator can write (normalised) and the finding it states."""
    findings: list[Finding] = [
        (kind, side, zone) for kind in ("consolidation", "nodule") for side in SIDES for zone in ZONES
    ]
    findings += [("effusion", side, size) for side in (*SIDES, "bilateral") for size in SIZES]
    findings += [("cardiomegaly",), ("ett",), ("pacemaker",)]
    sentences = {}
    for finding in findings:
        kind, *attributes = finding
        if kind in ("consolidation", "nodule"):
            _, sentence = finding_text(kind, side=attributes[0], zone=attributes[1])
        elif kind == "effusion":
            _, sentence = finding_text(kind, side=attributes[0], size=attributes[1])
        else:
            _, sentence = finding_text(kind)
        sentences[_normalise(sentence)] = finding
    return sentences


def read_findings(report: str) -> frozenset[Finding]:
    """The findings a synthetic report states, read back from its sentences (case and punctuation ignored)."""
    text = f" {_normalise(report)} "
    return frozenset(f for sentence, f in _finding_sentences().items() if f" {sentence} " in text)


def finding_counts(prediction: Iterable[Finding], reference: Iterable[Finding]) -> tuple[int, int, int]:
    """``(TP, FP, FN)`` of predicted against reference findings (sets: a repeated finding counts once)."""
    predicted, true = set(prediction), set(reference)
    tp = len(predicted & true)
    return tp, len(predicted) - tp, len(true) - tp


def finding_f1(prediction: str, reference: str, empty: float = 0.0) -> float:
    """``2 TP / (2 TP + FP + FN)`` of the findings of two synthetic reports; ``empty`` when neither states one."""
    tp, fp, fn = finding_counts(read_findings(prediction), read_findings(reference))
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float(empty)


def finding_micro_f1(predictions: Sequence[str], references: Sequence[str]) -> float:
    """Micro F1 over findings of a corpus: TP, FP and FN summed over reports first (0.0 when there is none)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references.")
    totals = [0, 0, 0]
    for prediction, reference in zip(predictions, references):
        for k, count in enumerate(finding_counts(read_findings(prediction), read_findings(reference))):
            totals[k] += count
    tp, fp, fn = totals
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


class FindingF1Reward(RewardBase):
    """Finding-level F1 of each report against the row's ``solution`` (synthetic reports only)."""

    def __init__(
        self,
        thinking: bool = False,
        occurrence: Occurrence = LAST,
        empty: float = 0.0,
        tasks: Sequence[str] | None = (REPORT_GENERATION,),
    ) -> None:
        super().__init__("finding_f1", tasks, thinking, occurrence, penalty=ABLATION_PENALTY)
        if not 0.0 <= float(empty) <= 1.0:
            raise ValueError(f"finding_f1_empty must be in [0, 1]; got {empty!r}.")
        self.empty = float(empty)

    def __call__(self, completions: Sequence[object], log_metric: Callable | None = None, **columns) -> list:
        rewards: list[float | None] = [None] * len(completions)
        counts = []
        for i, answer, reference in self._report_rows(completions, columns):
            if answer is None:
                rewards[i] = self.penalty
                continue
            predicted, true = read_findings(answer), read_findings(reference)
            tp, fp, fn = finding_counts(predicted, true)
            rewards[i] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else self.empty
            counts.append((tp, fp, fn, len(predicted)))
        if counts:
            tp, fp, fn, n_pred = (sum(c[k] for c in counts) for k in range(4))
            self._log(log_metric, "micro_f1", [2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0])
            self._log(log_metric, "pred_findings_mean", [c[3] for c in counts])
        return rewards


def finding_f1_reward(
    thinking: bool = False, report_occurrence: Occurrence = LAST, finding_f1_empty: float = 0.0
) -> RewardFunc:
    return FindingF1Reward(thinking, report_occurrence, finding_f1_empty)


def digit_share_reward(thinking: bool = False, report_occurrence: Occurrence = LAST) -> RewardFunc:
    return DigitShareReward(thinking, report_occurrence)
