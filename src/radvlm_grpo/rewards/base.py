"""What every reward shares: reading TRL's completions and the dataset's columns, routing rows by task, answer
extraction after ``</think>``, the safety cut, and logging sub-scores through TRL's ``log_metric``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from radvlm_grpo.metrics.thinking import FIRST, LAST, SAFETY_MAX_CHARS, Occurrence, extract_answer

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


def dataset_column(columns: dict, name: str, n: int) -> list | None:
    """A dataset column repeated per completion, or None when the dataset lacks it (or it has the wrong length)."""
    values = columns.get(name)
    if values is None or isinstance(values, (str, bytes)):
        return None
    values = list(values)
    return values if len(values) == n else None


class RewardBase:
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
        task = dataset_column(columns, "task", n)
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

    def _report_rows(self, completions: Sequence[object], columns: dict) -> list[tuple[int, str | None, str]]:
        """``(row, answer, reference)`` of every row a report reward scores: a task it handles and a text
        ``solution``. The answer is None when a thinking completion has no ``</think>``."""
        n = len(completions)
        handled = self._handled(columns, n)
        solutions = dataset_column(columns, "solution", n) or [None] * n
        answers = self._answers(completions)
        return [(i, answers[i], solutions[i]) for i in range(n) if handled[i] and isinstance(solutions[i], str)]

    def _log(self, log_metric: Callable | None, key: str, values: Sequence[float]) -> None:
        if callable(log_metric) and len(values):
            log_metric(f"{self.__name__}/{key}", float(np.mean(values)))

    def _log_per_task(self, log_metric: Callable | None, columns: dict, rewards: list[float | None]) -> None:
        task = dataset_column(columns, "task", len(rewards))
        if task is None:
            return
        for name in sorted({t for t, r in zip(task, rewards) if r is not None and isinstance(t, str)}):
            self._log(log_metric, name, [r for t, r in zip(task, rewards) if t == name and r is not None])
