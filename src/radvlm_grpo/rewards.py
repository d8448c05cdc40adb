"""Reward functions for TRL's ``GRPOTrainer``, chosen by name from a recipe (``reward_funcs: [soft_f1]``).

Each reward is a picklable callable ``(completions, **columns) -> list[float | None]`` whose ``__name__`` is its
registry name (TRL logs ``rewards/<name>/mean``). It reads the dataset columns it needs by name (``boxes``,
``solution``, ``task``), accepts completions in TRL's conversational form (``[[{"role": "assistant", "content":
"..."}], ...]``) or as plain strings, and never raises on model output: a malformed completion gets the reward's
documented penalty. Rows whose ``task`` the reward does not handle get ``None``, which TRL ignores, so one multi-task
dataset can carry several rewards. Sub-scores go to TRL's ``log_metric`` when it is passed.

| name | handles | score | penalty (method.md 2.2, 2.4) |
|---|---|---|---|
| ``soft_f1`` | grounding tasks | Hungarian soft-F1 (paper form; ``soft_f1_variant: dev`` for the authors' code form) | 0 |
| ``iou`` | grounding tasks | summed Hungarian-matched IoU / max(P, G) (the IoU for one box against one) | 0 |
| ``gleu`` | report generation | sentence Google-BLEU, as ``evaluate``'s google_bleu | 0 |
| ``bleu`` | report generation | sentence BLEU-4 (13a tokens, NLTK smoothing method1) | 0 |
| ``rouge_l`` | report generation | ROUGE-L F-measure (rouge-score) | 0 |

The penalty is given when a thinking completion has no ``</think>`` and, for the grounding rewards, when the answer is
empty; an answer with no box scores 0 by the soft-F1 rule. A completion that is not text (``None``, a number, an odd
message structure) is read as empty. A row whose ground truth is missing gets ``None``. The clinical rewards
``radcliq`` (-RadCliQ-v1, the paper's report reward), ``bertscore`` and ``radgraph_f1`` (the Table 3 ablations) live in
``radvlm_grpo.clinical_rewards`` and register themselves here.

Every reward reads at most the first 65,536 characters of an answer (``thinking.SAFETY_MAX_CHARS``, not from the
paper: real completions are far shorter, so it only bounds the cost of pathological text); the clinical rewards then
cut answer and reference to 2,048 (their ``report_max_chars``). True boxes from a float32 ``boxes`` column are
matched as they were written (``boxes.undo_float32_storage``), so an exact answer scores exactly 1.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from radvlm_grpo.boxes import (
    RADVLM_SCALE,
    as_boxes,
    parse_boxes,
    parse_boxes_flat,
    undo_float32_storage,
    valid_mask,
)
from radvlm_grpo.data.schema import GROUNDING_TASKS, REPORT_GENERATION
from radvlm_grpo.lexical import bleu_scores, gleu_scores, rouge_l_scores
from radvlm_grpo.soft_f1 import PAPER, SOFT_F1_VARIANTS, hungarian_iou_from_stats, match_stats_flat, soft_f1_from_stats
from radvlm_grpo.thinking import (
    ABLATION_PENALTY,
    FIRST,
    GROUNDING_PENALTY,
    LAST,
    SAFETY_MAX_CHARS,
    Occurrence,
    extract_answer,
)

RewardFunc = Callable[..., list[float | None]]


def completion_text(completion: object) -> str:
    """The text of one completion: a string, or the last message of TRL's conversational form; "" otherwise.

    Message content may be a string or a list of ``{"type": "text", "text": ...}`` parts (the parts are joined).
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        message = completion
    elif isinstance(completion, (list, tuple)) and completion and isinstance(completion[-1], dict):
        message = completion[-1]
    else:
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _column(columns: dict, name: str, n: int) -> list | None:
    """A dataset column repeated per completion, or None when the dataset lacks it (or it has the wrong length)."""
    values = columns.get(name)
    if values is None or isinstance(values, (str, bytes)):
        return None
    values = list(values)
    return values if len(values) == n else None


class _Reward:
    """Shared routing and answer extraction; subclasses score the rows they handle."""

    def __init__(
        self, name: str, tasks: Sequence[str] | None, thinking: bool, occurrence: Occurrence, penalty: float
    ) -> None:
        if occurrence not in (FIRST, LAST):
            raise ValueError(f"The </think> occurrence must be 'first' or 'last'; got {occurrence!r}.")
        self.__name__ = name
        self.tasks = tuple(tasks) if tasks is not None else None
        self.thinking = bool(thinking)
        self.occurrence = occurrence
        self.penalty = float(penalty)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__name__!r}, tasks={self.tasks}, thinking={self.thinking})"

    def _handled(self, columns: dict, n: int) -> list[bool]:
        task = _column(columns, "task", n)
        if self.tasks is None or task is None:
            return [True] * n
        return [t in self.tasks for t in task]

    def _answers(self, completions: Sequence[object]) -> list[str | None]:
        """Answer text per completion (None: no ``</think>`` in a thinking completion), cut to the safety limit."""
        answers = []
        for c in completions:
            answer = extract_answer(completion_text(c), thinking=self.thinking, occurrence=self.occurrence)
            answers.append(answer[:SAFETY_MAX_CHARS] if answer is not None else None)
        return answers

    def _log(self, log_metric: Callable | None, key: str, values: Sequence[float]) -> None:
        if callable(log_metric) and len(values):
            log_metric(f"{self.__name__}/{key}", float(np.mean(values)))

    def _log_per_task(self, log_metric: Callable | None, columns: dict, rewards: list[float | None]) -> None:
        task = _column(columns, "task", len(rewards))
        if task is None:
            return
        for name in sorted({t for t, r in zip(task, rewards) if r is not None and isinstance(t, str)}):
            self._log(log_metric, name, [r for t, r in zip(task, rewards) if t == name and r is not None])


class GroundingReward(_Reward):
    """Box rewards: predicted boxes parsed at ``box_scale``; truth from ``boxes`` ([0, 1]) or else ``solution``."""

    def __init__(
        self,
        name: str = "soft_f1",
        score: str = "soft_f1",
        variant: str = PAPER,
        box_scale: float = RADVLM_SCALE,
        thinking: bool = False,
        occurrence: Occurrence = FIRST,
        tasks: Sequence[str] | None = GROUNDING_TASKS,
        penalty: float = GROUNDING_PENALTY,
    ) -> None:
        super().__init__(name, tasks, thinking, occurrence, penalty)
        if score not in ("soft_f1", "iou"):
            raise ValueError(f"Unknown grounding score {score!r}; expected 'soft_f1' or 'iou'.")
        if variant not in SOFT_F1_VARIANTS:
            raise ValueError(f"Unknown soft-F1 variant {variant!r}; expected one of {SOFT_F1_VARIANTS}.")
        parse_boxes("", box_scale)  # validates the scale now rather than mid-training
        self.score, self.variant, self.box_scale = score, variant, float(box_scale)

    def _truth(self, boxes: object, solution: object) -> object:
        """One row's true boxes as given (a list of boxes), or parsed from ``solution``; None without ground truth."""
        if boxes is not None and not isinstance(boxes, (str, bytes)) and hasattr(boxes, "__len__") and len(boxes):
            return boxes
        if isinstance(solution, str):
            return parse_boxes(solution, self.box_scale)
        return [] if boxes is not None else None

    @staticmethod
    def _flat_truths(truths: list, ids: list) -> np.ndarray:
        """All rows' true boxes in one (M, 4) array; a malformed row raises, naming its id (a data error)."""
        flat = [box for truth in truths for box in truth]
        try:
            array = np.array(flat, dtype=np.float64) if flat else np.zeros((0, 4))
            if array.ndim == 2 and array.shape[1] == 4:
                return undo_float32_storage(array)  # a float32 `boxes` column: the boxes as written
        except (TypeError, ValueError):
            pass
        for truth, row_id in zip(truths, ids):
            try:
                as_boxes(truth)
            except (TypeError, ValueError) as error:
                raise ValueError(f"Row {row_id!r}: `boxes` is not a list of [x1, y1, x2, y2]: {error}") from None
        raise ValueError("The `boxes` column is not a list of [x1, y1, x2, y2] per row.")

    def __call__(self, completions: Sequence[object], log_metric: Callable | None = None, **columns) -> list:
        n = len(completions)
        handled = self._handled(columns, n)
        boxes_col = _column(columns, "boxes", n) or [None] * n
        solution_col = _column(columns, "solution", n) or [None] * n
        ids = _column(columns, "id", n) or list(range(n))
        answers = self._answers(completions)

        rewards: list[float | None] = [None] * n
        rows, texts, truths, truth_ids = [], [], [], []
        missing_think, no_answer = [], []
        for i in range(n):
            if not handled[i]:
                continue
            truth = self._truth(boxes_col[i], solution_col[i])
            if truth is None:
                continue
            missing_think.append(answers[i] is None)
            no_answer.append(not answers[i])
            if not answers[i]:
                rewards[i] = self.penalty
                continue
            rows.append(i)
            texts.append(answers[i])
            truths.append(truth)
            truth_ids.append(ids[i])

        no_box = [1.0] * sum(no_answer)
        if rows:
            preds, n_pred = parse_boxes_flat(texts, self.box_scale)
            n_gt = np.array([len(t) for t in truths], dtype=np.int64)
            stats = match_stats_flat(preds, n_pred, self._flat_truths(truths, truth_ids), n_gt)
            values = (
                soft_f1_from_stats(stats, self.variant) if self.score == "soft_f1" else hungarian_iou_from_stats(stats)
            )
            for i, v in zip(rows, values):
                rewards[i] = float(v)
            no_box.extend(n_pred == 0)
            self._log(log_metric, "pred_boxes_mean", n_pred)
            if len(preds):
                self._log(log_metric, "invalid_box_frac", [1.0 - valid_mask(preds).mean()])
            matched = np.minimum(stats.n_pred, stats.n_gt)
            self._log(log_metric, "matched_iou_mean", (stats.mass / np.maximum(matched, 1))[matched > 0])
        self._log(log_metric, "no_box_frac", no_box)
        if self.thinking:
            self._log(log_metric, "missing_think_frac", missing_think)
        self._log_per_task(log_metric, columns, rewards)
        return rewards


class TextReward(_Reward):
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
        n = len(completions)
        handled = self._handled(columns, n)
        solution_col = _column(columns, "solution", n) or [None] * n
        answers = self._answers(completions)

        rewards: list[float | None] = [None] * n
        rows, missing_think = [], []
        for i in range(n):
            if not handled[i] or not isinstance(solution_col[i], str):
                continue
            missing_think.append(answers[i] is None)
            if answers[i] is None:
                rewards[i] = self.penalty
            else:
                rows.append(i)
        if rows:
            references = [solution_col[i][:SAFETY_MAX_CHARS] for i in rows]
            scores = self.scorer([answers[i] for i in rows], references)
            for i, v in zip(rows, scores):
                rewards[i] = float(v) if np.isfinite(v) else self.penalty
            self._log(log_metric, "answer_chars_mean", [len(answers[i]) for i in rows])
        if self.thinking:
            self._log(log_metric, "missing_think_frac", missing_think)
        self._log_per_task(log_metric, columns, rewards)
        return rewards


# --- registry -------------------------------------------------------------------------------------------------------


def _soft_f1(
    box_scale: float = RADVLM_SCALE,
    thinking: bool = False,
    soft_f1_variant: str = PAPER,
    grounding_occurrence: Occurrence = FIRST,
) -> RewardFunc:
    return GroundingReward("soft_f1", "soft_f1", soft_f1_variant, box_scale, thinking, grounding_occurrence)


def _iou(
    box_scale: float = RADVLM_SCALE, thinking: bool = False, grounding_occurrence: Occurrence = FIRST
) -> RewardFunc:
    return GroundingReward("iou", "iou", PAPER, box_scale, thinking, grounding_occurrence)


def _gleu(thinking: bool = False, report_occurrence: Occurrence = LAST) -> RewardFunc:
    return TextReward("gleu", gleu_scores, thinking, report_occurrence)


def _bleu(thinking: bool = False, report_occurrence: Occurrence = LAST, bleu_max_order: int = 4) -> RewardFunc:
    return TextReward("bleu", partial(bleu_scores, max_order=bleu_max_order), thinking, report_occurrence)


def _rouge_l(
    thinking: bool = False, report_occurrence: Occurrence = LAST, rouge_use_stemmer: bool = False
) -> RewardFunc:
    return TextReward("rouge_l", partial(rouge_l_scores, use_stemmer=rouge_use_stemmer), thinking, report_occurrence)


REWARD_REGISTRY: dict[str, Callable[..., RewardFunc]] = {
    "soft_f1": _soft_f1,
    "iou": _iou,
    "gleu": _gleu,
    "bleu": _bleu,
    "rouge_l": _rouge_l,
}


def register_reward(name: str, factory: Callable[..., RewardFunc], overwrite: bool = False) -> None:
    """Add a reward factory (keyword options in, reward callable out) under ``name``."""
    if name in REWARD_REGISTRY and not overwrite:
        raise ValueError(f"A reward named {name!r} is already registered.")
    REWARD_REGISTRY[name] = factory


def _options_of(factory: Callable) -> set[str]:
    return {
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.kind is p.KEYWORD_ONLY or p.default is not p.empty
    }


def _import_reward(path: str) -> RewardFunc:
    """TRL's fallback: ``package.module.function`` imported with the working directory on ``sys.path``."""
    module_path, attr = path.rsplit(".", 1)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module_path), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"Could not import the reward function {path!r}: {error}") from error


def get_reward_funcs(names: Sequence[str], **options) -> list[RewardFunc]:
    """The reward callables for ``names`` (registry names or dotted import paths), built with ``options``.

    Options (``None`` means the default): ``box_scale`` (1 for RadVLM boxes, 1000 for Qwen3-VL's grid), ``thinking``
    (score the answer after ``</think>``; penalise its absence), ``soft_f1_variant`` ("paper" or "dev"),
    ``grounding_occurrence`` (default "first") and ``report_occurrence`` (default "last") of ``</think>``,
    ``bleu_max_order``, ``rouge_use_stemmer``. An option no registered reward knows is an error (a typo in a recipe
    should not pass silently).
    """
    if isinstance(names, str):
        names = [names]
    options = {k: v for k, v in options.items() if v is not None}
    known = set().union(*(_options_of(f) for f in REWARD_REGISTRY.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"Unknown reward option(s) {unknown}; known options are {sorted(known)}.")
    funcs = []
    for name in names:
        if name in REWARD_REGISTRY:
            factory = REWARD_REGISTRY[name]
            accepted = _options_of(factory)
            funcs.append(factory(**{k: v for k, v in options.items() if k in accepted}))
        elif "." in name:
            funcs.append(_import_reward(name))
        else:
            raise ValueError(
                f"Unknown reward {name!r}. Expected one of {sorted(REWARD_REGISTRY)} or a dotted import path "
                "(package.module.function)."
            )
    return funcs


# The clinical rewards (radcliq, bertscore, radgraph_f1) register themselves here; their models load only when a
# reward is built.
from radvlm_grpo import clinical_rewards  # noqa: E402, F401
