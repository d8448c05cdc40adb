"""Lexical report rewards: ``gleu``, ``bleu`` and ``rouge_l`` (the GLEU ablation of Table 3 and two more)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from radvlm_grpo.metrics.lexical import bleu_scores, gleu_scores, rouge_l_scores
from radvlm_grpo.metrics.thinking import ABLATION_PENALTY, LAST, SAFETY_MAX_CHARS, Occurrence
from radvlm_grpo.rewards.base import RewardBase, RewardFunc
from radvlm_grpo.vocab.schema import REPORT_GENERATION


class TextReward(RewardBase):
    """Report rewards: a scorer ``(answers, references) -> scores`` applied to the answer and the ``solution``."""

    def __init__(
        self,
        name: str,
        scorer: Callable[[list[str], list[str]], list[float]],
        thinking: bool = False,
        occurrence: Occurrence = LAST,
        tasks: Sequence[str] | None = (REPORT_GENERATION,),
        penalty: float = ABLATION_PENALTY,
    ) -> None:
        super().__init__(name, tasks, thinking, occurrence, penalty)
        self.scorer = scorer

    def __call__(self, completions: Sequence[object], log_metric: Callable | None = None, **columns) -> list:
        rewards: list[float | None] = [None] * len(completions)
        rows, answers, references, missing_think = [], [], [], []
        for i, answer, reference in self._report_rows(completions, columns):
            missing_think.append(answer is None)
            if answer is None:
                rewards[i] = self.penalty
            else:
                rows.append(i)
                answers.append(answer)
                references.append(reference[:SAFETY_MAX_CHARS])
        if rows:
            scores = self.scorer(answers, references)
            for i, v in zip(rows, scores):
                rewards[i] = float(v) if np.isfinite(v) else self.penalty
            self._log(log_metric, "answer_chars_mean", [len(answer) for answer in answers])
        if self.thinking:
            self._log(log_metric, "missing_think_frac", missing_think)
        self._log_per_task(log_metric, columns, rewards)
        return rewards


def gleu_reward(thinking: bool = False, report_occurrence: Occurrence = LAST) -> RewardFunc:
    return TextReward("gleu", gleu_scores, thinking, report_occurrence)


def bleu_reward(thinking: bool = False, report_occurrence: Occurrence = LAST, bleu_max_order: int = 4) -> RewardFunc:
    return TextReward("bleu", partial(bleu_scores, max_order=bleu_max_order), thinking, report_occurrence)


def rouge_l_reward(
    thinking: bool = False, report_occurrence: Occurrence = LAST, rouge_use_stemmer: bool = False
) -> RewardFunc:
    return TextReward("rouge_l", partial(rouge_l_scores, use_stemmer=rouge_use_stemmer), thinking, report_occurrence)
