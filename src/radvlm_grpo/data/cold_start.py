"""Cold-start "thinking" traces (RadVLM-GRPO stage 2): the teacher prompt, the trace filters, the SFT rows.

The authors' teacher (Qwen3-VL-235B) saw the image, the question and the ground-truth answer, and wrote a reasoning
trace that arrives at that answer without saying it was given (method.md 1.3). A trace is kept only if it closes its
``<think>`` block, ends with the ground-truth answer, does not leak that the answer was supplied, and has a sensible
length. Kept traces become SFT rows whose question ends with " /think", RadVLM-Thinking's trigger.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radvlm_grpo.metrics.thinking import THINK_CLOSE
from radvlm_grpo.vocab.boxes import parse_boxes
from radvlm_grpo.vocab.prompts import THINK_SUFFIX
from radvlm_grpo.vocab.schema import GROUNDING_TASKS, assistant_turn

THINK_OPEN = "<think>"

TEACHER_TEMPLATE = """You are an expert radiologist teaching a chest X-ray reading model how to reason.
You are given a chest X-ray image, a question about it, and the correct final answer.
{guide_section}
Question: {question}
Correct final answer: {answer}

Write the reasoning a careful radiologist would follow to reach this answer from the image alone: look at the
relevant anatomy systematically, describe what is visible, weigh alternatives, and conclude. Put all of the reasoning
inside <think> and </think>. Write it as if you found the answer yourself: never mention that an answer, a reference
or a ground truth was given to you. After </think>, write the final answer exactly as given above, word for word,
with nothing before or after it."""

GUIDE_SECTION = """Use this systematic reading guide where it helps:
{guide}
"""

# Phrases that give away that the teacher saw the answer; a trace containing one teaches the student to cheat.
LEAK_PATTERNS = (
    r"ground[\s-]*truth",
    r"(?:given|provided|supplied|correct|reference|expected|target)\s+(?:final\s+)?answer",
    r"answer\s+(?:was|is|has\s+been)\s+(?:given|provided|supplied)",
    r"i\s+(?:was|am|have\s+been)\s+(?:told|given)",
)
_LEAK_RE = re.compile("|".join(LEAK_PATTERNS), re.IGNORECASE)

READING_GUIDE_PATH = Path(__file__).resolve().parents[1] / "templates" / "cxr_reading_guide.md"


def teacher_prompt(question: str, answer: str, guide: str | None = None) -> str:
    """The teacher's text prompt; the image goes in as the user turn's image part."""
    question = question.removesuffix(THINK_SUFFIX).strip()
    guide_section = GUIDE_SECTION.format(guide=guide.strip()) if guide else ""
    return TEACHER_TEMPLATE.format(guide_section=guide_section, question=question, answer=answer.strip())


def teacher_messages(question: str, answer: str, guide: str | None = None) -> list[dict]:
    text = teacher_prompt(question, answer, guide)
    return [{"role": "user", "content": [{"type": "image", "text": None}, {"type": "text", "text": text}]}]


def normalize_answer(text: str) -> str:
    """Compare answers ignoring case, spacing and a trailing full stop."""
    return re.sub(r"\s+", " ", text).strip().rstrip(".").strip().lower()


@dataclass
class TraceFilter:
    """When a teacher trace is good enough to train on."""

    min_reasoning_chars: int = field(default=20, metadata={"help": "Shortest reasoning kept, in characters."})
    max_reasoning_chars: int = field(default=12000, metadata={"help": "Longest reasoning kept, in characters."})
    box_tolerance: float = field(
        default=0.005, metadata={"help": "Grounding: largest coordinate difference for boxes to match."}
    )


def split_trace(text: str) -> tuple[str, str] | None:
    """``(reasoning, answer)`` of ``<think> reasoning </think> answer``; None without a closing ``</think>``."""
    if THINK_CLOSE not in text:
        return None
    reasoning, answer = text.rsplit(THINK_CLOSE, 1)
    return reasoning.replace(THINK_OPEN, "", 1).strip(), answer.strip()


def boxes_match(predicted: np.ndarray, truth: np.ndarray, tolerance: float) -> bool:
    """Same number of boxes, each true box matched by a distinct predicted box within ``tolerance``."""
    if len(predicted) != len(truth):
        return False
    remaining = list(range(len(predicted)))
    for box in truth:
        hit = next((i for i in remaining if np.all(np.abs(predicted[i] - box) <= tolerance)), None)
        if hit is None:
            return False
        remaining.remove(hit)
    return True


def reject_reason(trace: str, answer: str, task: str, boxes: list, config: TraceFilter) -> str | None:
    """Why a trace is rejected (a short label for the statistics), or None when it is kept."""
    parts = split_trace(trace)
    if parts is None:
        return "no </think>"
    reasoning, final = parts
    if THINK_OPEN in reasoning or THINK_CLOSE in final:
        return "several think blocks"
    if _LEAK_RE.search(reasoning) or _LEAK_RE.search(final):
        return "leaks the given answer"
    if len(reasoning) < config.min_reasoning_chars:
        return "reasoning too short"
    if len(reasoning) > config.max_reasoning_chars:
        return "reasoning too long"
    if task in GROUNDING_TASKS:
        truth = np.asarray(boxes, dtype=float).reshape(-1, 4)
        if not boxes_match(parse_boxes(final), truth, config.box_tolerance):
            return "boxes differ from the answer"
    elif normalize_answer(final) != normalize_answer(answer):
        return "answer differs"
    return None


def close_with_answer(reasoning: str, answer: str) -> str:
    """A trace whose answer is the ground truth verbatim (``answer_mode: append``)."""
    reasoning = reasoning.split(THINK_CLOSE, 1)[0].replace(THINK_OPEN, "", 1).strip()
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{answer.strip()}"


def format_trace(trace: str) -> str:
    """The kept trace as the student learns it: ``<think>\\n...\\n</think>\\n\\nanswer``."""
    reasoning, answer = split_trace(trace)
    return f"{THINK_OPEN}\n{reasoning}\n{THINK_CLOSE}\n\n{answer}"


def sft_row(prompt: list[dict], image, trace: str, task: str, row_id: str) -> dict:
    """An SFT-schema row: the original question with " /think" appended, answered by the trace."""
    user = dict(prompt[-1])
    content = [dict(part) for part in user["content"]]
    last_text = max(i for i, part in enumerate(content) if part["type"] == "text")
    if not content[last_text]["text"].endswith(THINK_SUFFIX):
        content[last_text]["text"] += THINK_SUFFIX
    user["content"] = content
    return {"messages": [user, assistant_turn(format_trace(trace))], "images": [image], "task": task, "id": row_id}


def load_guide(path: str | None) -> str | None:
    """``"default"`` is the short guide shipped with the package; any other value is a file to read."""
    if path is None:
        return None
    return (READING_GUIDE_PATH if path == "default" else Path(path)).read_text()
