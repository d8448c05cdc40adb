"""The one dataset schema every stage reads, whatever the source (RadVLM JSON, synthetic data, public sets).

SFT rows (``messages`` + ``images``) are what TRL's vision collator consumes. GRPO rows keep the prompt apart from the
ground truth: ``prompt`` is the conversational user turn, ``image`` the single frontal image, ``solution`` the reference
answer text and ``boxes`` its ground-truth boxes, normalised to [0, 1] as ``[x1, y1, x2, y2]``. ``task`` routes a row to
its reward; ``id`` names the row in logs and error messages.
"""

from __future__ import annotations

from collections.abc import Iterable

from datasets import Features, Image, List, Value

REPORT_GENERATION = "report_generation"
ANATOMICAL_GROUNDING = "anatomical_grounding"
ABNORMALITY_GROUNDING = "abnormality_grounding"
PHRASE_GROUNDING = "phrase_grounding"
ABNORMALITY_DETECTION = "abnormality_detection"
CLASSIFICATION = "classification"
CONVERSATION = "conversation"
GROUNDED_CONVERSATION = "grounded_conversation"

GROUNDING_TASKS = (ANATOMICAL_GROUNDING, ABNORMALITY_GROUNDING, PHRASE_GROUNDING)
# Tasks GRPO trains on (the paper trains report generation and the three grounding tasks separately).
GRPO_TASKS = (REPORT_GENERATION, *GROUNDING_TASKS)
# Every task of the RadVLM instruction data; the extra ones appear in SFT only.
ALL_TASKS = (*GRPO_TASKS, ABNORMALITY_DETECTION, CLASSIFICATION, CONVERSATION, GROUNDED_CONVERSATION)

_content = List({"type": Value("string"), "text": Value("string")})
_message = {"role": Value("string"), "content": _content}

SFT_FEATURES = Features(
    {
        "messages": List(_message),
        "images": List(Image()),
        "task": Value("string"),
        "id": Value("string"),
    }
)

GRPO_FEATURES = Features(
    {
        "prompt": List(_message),
        "image": Image(),
        "solution": Value("string"),
        "boxes": List(List(Value("float32"), length=4)),
        "task": Value("string"),
        "id": Value("string"),
    }
)

SFT_COLUMNS = tuple(SFT_FEATURES)
GRPO_COLUMNS = tuple(GRPO_FEATURES)


def user_turn(text: str, with_image: bool = True) -> dict:
    """A user message in TRL's multimodal form: the image part first, then the question."""
    content = [{"type": "image", "text": None}] if with_image else []
    content.append({"type": "text", "text": text})
    return {"role": "user", "content": content}


def assistant_turn(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def check_columns(column_names: Iterable[str], kind: str, source: str = "dataset") -> None:
    """Fail early, naming what is missing, instead of deep inside a trainer."""
    required = {"sft": ("messages", "images"), "grpo": ("prompt", "image", "solution", "boxes", "task", "id")}
    if kind not in required:
        raise ValueError(f"Unknown schema kind {kind!r}; expected one of {sorted(required)}.")
    missing = [c for c in required[kind] if c not in set(column_names)]
    if missing:
        raise ValueError(
            f"{source} lacks the column(s) {missing} of the {kind.upper()} schema (see radvlm_grpo.vocab.schema). "
            "Convert RadVLM JSON with `python scripts/prepare_data.py --json ... --schema sft|grpo` or build synthetic data with "
            "`python -m radvlm_grpo.data.synthetic OUT_DIR`."
        )
