"""Run a checkpoint on chest X-rays and show its answers: what ``scripts/predict.py`` and the web app share.

A *query* is one image and one question: built from a task and, for grounding, what to locate (the region, the
abnormality or the phrase), with the same RadVLM question templates the training data uses; or taken from a dataset
row in the GRPO schema, with its reference answer and boxes. ``Predictor`` generates the answers in batches (greedy by
default), extracts the answer after ``</think>`` when thinking, and reads the boxes; ``draw_boxes`` draws them, each
labelled, on the image (predicted in red, reference in green).

``load_predictor`` loads a Hub id or a local folder, a full checkpoint or a LoRA adapter (merged into its base in
memory), and refuses a model without a processor with the fix, before any weights load.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, UnidentifiedImageError

from radvlm_grpo.cli import UserError
from radvlm_grpo.data.radvlm_json import to_rgb
from radvlm_grpo.metrics.thinking import extract_answer
from radvlm_grpo.models.generation import GenerationRequest, SamplingSettings, TransformersGenerator
from radvlm_grpo.models.loading import check_model_source
from radvlm_grpo.vocab.boxes import RADVLM_SCALE, as_boxes, format_box, parse_boxes, valid_mask
from radvlm_grpo.vocab.prompts import THINK_SUFFIX, FirstTemplate, grounding_question, report_question
from radvlm_grpo.vocab.schema import GROUNDING_TASKS, GRPO_TASKS, REPORT_GENERATION, user_turn

PRED_COLOR, REFERENCE_COLOR = (214, 39, 40), (44, 160, 44)  # red and green, as the evaluation figures
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")
MAX_LABEL_CHARS = 40

SUBJECT_HELP = {
    "anatomical_grounding": "the anatomical region, e.g. 'right lung'",
    "abnormality_grounding": "the abnormality, e.g. 'pleural effusion'",
    "phrase_grounding": "the phrase of a report, e.g. 'Small left pleural effusion.'",
}


# ---------------------------------------------------------------------------------------------------------------------
# Queries and questions
# ---------------------------------------------------------------------------------------------------------------------


def check_task(task: str) -> str:
    if task not in GRPO_TASKS:
        raise UserError(f"Unknown task {task!r}; choose one of {', '.join(GRPO_TASKS)}.")
    return task


def build_question(task: str, subject: str | None = None, thinking: bool = False) -> str:
    """The first RadVLM question of ``task`` (the templates training used); grounding needs ``subject``."""
    check_task(task)
    subject = (subject or "").strip()
    if task == REPORT_GENERATION:
        return report_question(FirstTemplate(), thinking)
    if not subject:
        raise UserError(f"{task} needs what to locate: {SUBJECT_HELP[task]}.")
    # The same builder as the training data: the subject goes through prompts.normalize_label there too.
    return grounding_question(task, subject, FirstTemplate(), thinking)


@dataclass
class Query:
    """One image and one question; a dataset row also brings its reference answer and boxes."""

    id: str
    image: Image.Image
    task: str
    messages: list[dict]
    label: str = ""
    reference: str | None = None
    reference_boxes: np.ndarray | None = None

    @property
    def question(self) -> str:
        user = next(m for m in reversed(self.messages) if m["role"] == "user")
        return next(part["text"] for part in reversed(user["content"]) if part["type"] == "text")


def image_query(
    query_id: str, image: Image.Image, task: str, subject: str | None = None, thinking: bool = False
) -> Query:
    """A query for an image of the user's: the task's question, about ``subject`` for grounding."""
    question = build_question(task, subject, thinking)
    return Query(query_id, to_rgb(image), task, [user_turn(question)], label=(subject or "").strip())


def row_query(row: dict, thinking: bool = False) -> Query:
    """A query for a GRPO-schema row: its own prompt (with " /think" when thinking), reference and boxes."""
    messages = [dict(m) for m in row["prompt"]]
    if thinking:
        user = next(m for m in reversed(messages) if m["role"] == "user")
        content = [dict(part) for part in user["content"]]
        last = max(i for i, part in enumerate(content) if part["type"] == "text")
        if not content[last]["text"].endswith(THINK_SUFFIX):
            content[last]["text"] += THINK_SUFFIX
        user["content"] = content
    task = row["task"]
    boxes = as_boxes(row.get("boxes")) if task in GROUNDING_TASKS else None
    return Query(
        str(row["id"]), to_rgb(row["image"]), task, messages, reference=row.get("solution"), reference_boxes=boxes
    )


def open_image(path: str | Path) -> Image.Image:
    """An image file, decoded now so that a missing or unreadable file is named before the model loads."""
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Image {path} does not exist; check the path.")
    if not path.is_file():
        raise IsADirectoryError(f"Image {path} is a folder; give image files (PNG, JPEG...).")
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise UserError(f"Cannot read {path} as an image ({error}); give a PNG, JPEG or other image file.") from error


# ---------------------------------------------------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class Prediction:
    """The model's answer to a query: the raw text, the answer (after ``</think>`` when thinking) and its boxes."""

    query: Query
    text: str
    answer: str
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    truncated: bool = False

    @property
    def is_grounding(self) -> bool:
        return self.query.task in GROUNDING_TASKS

    def record(self) -> dict:
        """A JSON-ready summary (no image)."""
        record = {
            "id": self.query.id,
            "task": self.query.task,
            "question": self.query.question,
            "text": self.text,
            "answer": self.answer,
            "truncated": self.truncated,
        }
        if self.is_grounding:
            record["boxes"] = self.boxes.round(4).tolist()
        if self.query.reference is not None:
            record["reference"] = self.query.reference
        if self.query.reference_boxes is not None:
            record["reference_boxes"] = self.query.reference_boxes.round(4).tolist()
        return record


class Predictor:
    """Answers queries with a generator (``models.generation``): batches of ``batch_size``, boxes read at
    ``box_scale`` (1 for RadVLM's [0, 1] boxes, 1000 for Qwen3-VL's grid)."""

    def __init__(
        self,
        generator,
        sampling: SamplingSettings | None = None,
        box_scale: float = RADVLM_SCALE,
        thinking: bool = False,
        batch_size: int = 8,
        name: str = "",
    ):
        self.generator, self.sampling = generator, sampling or SamplingSettings(max_new_tokens=512)
        self.box_scale, self.thinking, self.batch_size, self.name = box_scale, thinking, batch_size, name

    def predict(self, queries: Sequence[Query]) -> list[Prediction]:
        predictions = []
        for start in range(0, len(queries), self.batch_size):
            batch = queries[start : start + self.batch_size]
            requests = [GenerationRequest(q.id, q.messages, [q.image]) for q in batch]
            for query, result in zip(batch, self.generator.generate(requests, self.sampling)):
                answer = extract_answer(result.text, thinking=self.thinking) or ""
                boxes = parse_boxes(answer, self.box_scale) if query.task in GROUNDING_TASKS else np.zeros((0, 4))
                predictions.append(Prediction(query, result.text, answer, boxes, result.truncated))
        return predictions

    def ask(self, image: Image.Image, task: str, subject: str | None = None) -> Prediction:
        """One image, one task: what the web app calls."""
        return self.predict([image_query("image", image, task, subject, self.thinking)])[0]


def describe_boxes(boxes: np.ndarray) -> str:
    """The boxes as text, one per line, invalid ones (reversed, out of [0, 1]) marked; "no box" when empty."""
    if not len(boxes):
        return "no box"
    valid = valid_mask(boxes)
    return "\n".join(
        f"{k + 1}: {format_box(box)}{'' if ok else ' (invalid)'}" for k, (box, ok) in enumerate(zip(boxes, valid))
    )


# ---------------------------------------------------------------------------------------------------------------------
# Drawing
# ---------------------------------------------------------------------------------------------------------------------


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _shorten(text: str, limit: int = MAX_LABEL_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def draw_boxes(
    image: Image.Image,
    boxes: np.ndarray,
    label: str = "",
    reference_boxes: np.ndarray | None = None,
) -> Image.Image:
    """A copy of ``image`` with the predicted boxes in red, each labelled ``k: label`` (or ``k``), and the reference
    boxes in green labelled ``ref``; boxes are normalised [x1, y1, x2, y2]. Invalid boxes are not drawn. An image
    without a predicted box says "no box predicted", one whose boxes are all invalid "no valid box"."""
    canvas = to_rgb(image).copy()
    draw = ImageDraw.Draw(canvas)
    width, height = canvas.size
    line = max(2, round(min(width, height) / 160))
    font = _font(max(10, round(min(width, height) / 28)))

    def box_pixels(box: np.ndarray) -> tuple[float, float, float, float]:
        x1, y1, x2, y2 = box
        return x1 * width, y1 * height, x2 * width, y2 * height

    def tag(x: float, y: float, text: str, color: tuple[int, int, int], above: bool = True) -> None:
        """A filled label whose bottom edge is at ``y`` (``above``) or whose top edge is (below), moved to the other
        side when it would leave the image."""
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        text_height = bottom + 2
        if above and y - text_height < 0:
            above = False
        elif not above and y + text_height > height:
            above = True
        y_top = y - text_height if above else y
        x = min(max(0.0, x), max(0.0, width - (right - left) - 4))
        draw.rectangle((x, y_top, x + right - left + 4, y_top + text_height), fill=color)
        draw.text((x + 2 - left, y_top + 1), text, fill=(255, 255, 255), font=font)

    reference = np.zeros((0, 4)) if reference_boxes is None else np.asarray(reference_boxes, dtype=float)
    for box in reference[valid_mask(reference)] if len(reference) else []:
        x1, y1, x2, y2 = box_pixels(box)
        draw.rectangle((x1, y1, x2, y2), outline=REFERENCE_COLOR, width=line)
        tag(x1, y2 + line, "ref", REFERENCE_COLOR, above=False)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
    valid = valid_mask(boxes)
    short = _shorten(label)
    for k, (box, ok) in enumerate(zip(boxes, valid)):
        if not ok:
            continue
        x1, y1, x2, y2 = box_pixels(box)
        draw.rectangle((x1, y1, x2, y2), outline=PRED_COLOR, width=line)
        name = f"{k + 1}" if len(boxes) > 1 else ""
        tag(x1, y1 - line // 2, f"{name}: {short}" if name and short else (name or short or "box"), PRED_COLOR)
    if not valid.any():
        tag(line, height - line, "no valid box" if len(boxes) else "no box predicted", PRED_COLOR)
    return canvas


def draw_prediction(prediction: Prediction) -> Image.Image:
    """The query's image with the prediction's boxes and, for a dataset row, its reference boxes."""
    return draw_boxes(
        prediction.query.image, prediction.boxes, prediction.query.label, prediction.query.reference_boxes
    )


# ---------------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------------


def _has_processor(folder: Path) -> bool:
    return any((folder / f).is_file() for f in PROCESSOR_FILES) and any(
        (folder / f).is_file() for f in TOKENIZER_FILES
    )


def _no_processor(source: str, base: str | None = None) -> UserError:
    fix = f"--processor_name_or_path {base}" if base else "--processor_name_or_path <its base model>"
    return UserError(
        f"{source} has no processor (image processor and tokenizer: {PROCESSOR_FILES[1]}, {TOKENIZER_FILES[0]}); "
        f"pass {fix}, or save the base model's processor into it with "
        f"`AutoProcessor.from_pretrained(BASE).save_pretrained({source!r})`."
    )


def resolve_sources(model: str, processor: str | None = None, revision: str | None = None) -> dict:
    """Where the weights, the adapter and the processor come from; checks a local folder's files before loading.

    Returns ``{"base": ..., "adapter": ... or None, "processor": ...}``.
    """
    source = check_model_source(model)
    folder = Path(source).expanduser()
    adapter = None
    if folder.exists():
        if not folder.is_dir():
            raise NotADirectoryError(f"Model {source} is a file; give a model folder or a Hub id.")
        if (folder / "adapter_config.json").is_file():
            adapter = source
        elif not (folder / "config.json").is_file():
            raise FileNotFoundError(
                f"{source} holds neither a model (config.json) nor a LoRA adapter (adapter_config.json); give the "
                "output_dir of a training run, or a Hub id."
            )
    else:
        # A Hub id may name an adapter too: it is one when the repo holds adapter_config.json (offline: when the
        # cache does). A failure to ask (gated, no such repo) is reported as it is, not taken for "a full model".
        from huggingface_hub import constants, file_exists, try_to_load_from_cache

        if constants.HF_HUB_OFFLINE:
            cached = try_to_load_from_cache(source, "adapter_config.json", revision=revision)
            adapter = source if isinstance(cached, str) else None
        elif file_exists(source, "adapter_config.json", revision=revision):
            adapter = source
    base = source
    if adapter is not None:
        from peft import PeftConfig

        base = PeftConfig.from_pretrained(adapter, revision=revision).base_model_name_or_path
    if processor is None:
        if folder.is_dir() and _has_processor(folder):
            processor = source
        elif adapter is not None:
            processor = base
        elif folder.is_dir():
            raise _no_processor(source)
        else:
            processor = source
    elif Path(processor).expanduser().is_dir() and not _has_processor(Path(processor).expanduser()):
        raise _no_processor(processor)
    return {"base": base, "adapter": adapter, "processor": processor}


def load_predictor(
    model: str,
    processor: str | None = None,
    revision: str | None = None,
    dtype: str = "auto",
    sampling: SamplingSettings | None = None,
    box_scale: float = RADVLM_SCALE,
    thinking: bool = False,
    batch_size: int = 8,
) -> Predictor:
    """A ``Predictor`` on batched transformers generation for a checkpoint (Hub id or folder, LoRA adapters too)."""
    import torch
    from transformers import AutoProcessor
    from trl import ModelConfig

    from radvlm_grpo.models.loading import get_model

    sources = resolve_sources(model, processor, revision)
    try:
        loaded_processor = AutoProcessor.from_pretrained(
            sources["processor"], revision=None if sources["processor"] != model else revision, padding_side="left"
        )
    except OSError as error:
        raise OSError(f"Could not load the processor of {sources['processor']!r}: {error}") from error
    if not hasattr(loaded_processor, "image_processor"):
        raise _no_processor(sources["processor"], sources["base"] if sources["adapter"] else None)
    device_map = "auto" if torch.cuda.is_available() else None
    base_revision = None if sources["adapter"] else revision
    net = get_model(
        ModelConfig(model_name_or_path=sources["base"], model_revision=base_revision, dtype=dtype),
        device_map=device_map,
    )
    if sources["adapter"] is not None:
        from peft import PeftModel

        net = PeftModel.from_pretrained(net, sources["adapter"], revision=revision).merge_and_unload()
    generator = TransformersGenerator(net.eval(), loaded_processor, batch_size)
    name = Path(model.rstrip("/")).name if Path(model).expanduser().exists() else model
    return Predictor(generator, sampling, box_scale, thinking, batch_size, name=name)
