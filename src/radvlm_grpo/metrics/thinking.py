"""The answer of a "thinking" completion and the penalties the paper gives when there is none (method.md 2.1-2.4, 3.3).

A thinking model writes ``<think> ... </think>`` and then its answer. The authors take the text after the **last**
``</think>`` for report rewards and for evaluation, and after the **first** one for the grounding reward; a completion
without ``</think>`` gets a penalty instead of a score. Non-thinking data is scored on the whole completion.
"""

from __future__ import annotations

from typing import Literal

THINK_CLOSE = "</think>"
FIRST = "first"
LAST = "last"
Occurrence = Literal["first", "last"]

# Report reward (-RadCliQ, method.md 2.1): -3 when `</think>` is missing, when the answer or the reference is 5
# characters or shorter, or when scoring fails; texts are lowercased and cut to 2048 characters first.
RADCLIQ_PENALTY = -3.0
MIN_REPORT_CHARS = 5  # a text of this length or shorter is penalised (`len(text) <= 5`)
REWARD_MAX_CHARS = 2048

# Grounding reward (soft-F1, method.md 2.2): 0 when `</think>` is missing, when the answer after it is empty, or when it
# holds no box.
GROUNDING_PENALTY = 0.0

# Ablation rewards (BERTScore, RadGraph-F1, GLEU; method.md 2.4): 0 when `</think>` is missing. BERTScore and
# RadGraph-F1 also give 0 to texts of 5 characters or fewer, and on errors; GLEU has no length check.
ABLATION_PENALTY = 0.0

# Evaluation (method.md 3.3): answers are cut to 4000 characters before scoring.
EVAL_MAX_CHARS = 4000

# Not from the paper: every reward reads at most this many characters of an answer. Real completions are far shorter
# (4096 tokens at most), so this never changes a paper setting; it bounds the cost of pathological text.
SAFETY_MAX_CHARS = 65536


def extract_answer(text: object, thinking: bool = False, occurrence: Occurrence = LAST) -> str | None:
    """The answer part of a completion, stripped; ``None`` when ``thinking`` and no ``</think>`` is present.

    Without ``thinking`` the whole text is the answer (the authors score non-thinking data on the full response).
    A non-string input is treated as an empty answer rather than raising.
    """
    if not isinstance(text, str):
        return None if thinking else ""
    if not thinking:
        return text.strip()
    if occurrence == LAST:
        at = text.rfind(THINK_CLOSE)
    elif occurrence == FIRST:
        at = text.find(THINK_CLOSE)
    else:
        raise ValueError(f"occurrence must be 'first' or 'last'; got {occurrence!r}.")
    if at < 0:
        return None
    return text[at + len(THINK_CLOSE) :].strip()


def has_think_close(text: object) -> bool:
    """Whether a completion closes its thinking block (the only format the authors enforce)."""
    return isinstance(text, str) and THINK_CLOSE in text


def is_too_short(text: str | None, min_chars: int = MIN_REPORT_CHARS) -> bool:
    """The report rewards' minimum-length rule: ``len(text) <= min_chars`` (or no text) is penalised."""
    return text is None or len(text) <= min_chars
