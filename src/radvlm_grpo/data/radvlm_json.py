"""Convert the RadVLM instruction data (LLaVA/ShareGPT JSON) into the project schema (see ``schema.py``).

The RadVLM data is one JSON array per source (``json.dump(rows, indent=4)``), a row being
``{"image": path, "conversations": [{"from": "human", "value": "<image>\\nQ"}, {"from": "gpt", "value": "A"}, ...],
"id": "<id_prefix>_<n>"}`` (classification rows also carry ``labels``/``pathologies``, ignored here). The full set is
1.1 M rows, so nothing is held in memory: the JSON is read incrementally and rows go to Arrow in batches through
``Dataset.from_generator``.

Task of a row, first rule that applies:

1. the task given for its file (``path:task`` on the command line);
2. the id prefix the RadVLM scripts write (``mimic-train_12`` -> report generation, ``chestima-train_3`` -> anatomical
   grounding, ``vindr-cxr-mono-train1_7`` -> abnormality grounding, ``mscxr``/``padchest`` -> phrase grounding ...,
   see ``ID_PREFIX_TASKS``);
3. the question templates of RadVLM's ``create_instructions.py``: several user turns -> (grounded) conversation;
   a report question -> report generation; a phrase question with boxes in the answer -> phrase grounding; a
   location question with boxes -> abnormality grounding when the asked label is a VinDr-CXR class, anatomical
   grounding otherwise; the detection and classification questions -> those tasks;
4. otherwise ``"unknown"``: kept for SFT, skipped (and counted) for GRPO.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from datasets import Dataset, DatasetDict, load_from_disk
from datasets.exceptions import DatasetGenerationError
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from radvlm_grpo.publishing.hub import push_dataset
from radvlm_grpo.vocab.boxes import BOX_PATTERN, parse_boxes, valid_mask
from radvlm_grpo.vocab.prompts import LOCATION_QUESTIONS, PHRASE_QUESTIONS, REPORT_QUESTIONS, THINK_SUFFIX
from radvlm_grpo.vocab.schema import (
    ABNORMALITY_DETECTION,
    ABNORMALITY_GROUNDING,
    ALL_TASKS,
    ANATOMICAL_GROUNDING,
    CLASSIFICATION,
    CONVERSATION,
    GROUNDED_CONVERSATION,
    GROUNDING_TASKS,
    GRPO_FEATURES,
    GRPO_TASKS,
    PHRASE_GROUNDING,
    REPORT_GENERATION,
    SFT_FEATURES,
)

logger = logging.getLogger(__name__)

UNKNOWN_TASK = "unknown"
IMAGE_TAG = "<image>"
DEFAULT_CHUNK_CHARS = 1 << 20

# ---------------------------------------------------------------------------------------------------------------------
# Task inference
# ---------------------------------------------------------------------------------------------------------------------

# The id prefixes of RadVLM's create_llava_dataset.py, with the repeat digit and the split word removed.
ID_PREFIX_TASKS = {
    "mimic": REPORT_GENERATION,
    "chexpertplus": REPORT_GENERATION,
    "mimic-labels": CLASSIFICATION,
    "chexpert": CLASSIFICATION,
    "chestima": ANATOMICAL_GROUNDING,
    "vindr-cxr-mono": ABNORMALITY_GROUNDING,
    "vindr-cxr": ABNORMALITY_DETECTION,
    "mscxr": PHRASE_GROUNDING,
    "padchest": PHRASE_GROUNDING,
    "conv": CONVERSATION,
    "conv-grounded": GROUNDED_CONVERSATION,
    "conv-grounded-padchest": GROUNDED_CONVERSATION,
}

# Questions of the SFT-only tasks (create_instructions.py: generate_instruction_abnormalities_grouped and
# generate_instruction_abnormalities); the report and grounding questions come from radvlm_grpo.vocab.prompts.
DETECTION_QUESTIONS = (
    "Could you indicate if there are any abnormalities on this Chest X-ray and their locations?",
    "Are abnormalities present on this Chest X-ray? Where exactly can they be found?",
    "Please identify any lesions or abnormalities on this X-ray and specify their locations.",
    "On this Chest X-ray, can you point out any abnormalities and their precise positions?",
    "I need information on any abnormalities or lesions on this X-ray, including their locations. Can you help?",
    "Can you detect and describe the location of any abnormalities found on this Chest X-ray?",
    "Are there identifiable abnormalities on this Chest X-ray? If so, where are they located?",
    "Tell me about any lesions on this X-ray and detail their specific locations.",
    "Do any abnormalities appear on this Chest X-ray? Please point them out along with their locations.",
    "Identify any abnormalities or lesions present on this X-ray and provide their exact locations.",
)
CLASSIFICATION_QUESTIONS = (
    "Can you tell me if there are any abnormalities on this image?",
    "Are there any abnormalities on this Chest X-ray?",
    "Please identify abnormalities on this X-ray.",
    "Can you point out if there are any abnormalities on this Chest X-ray?",
    "Are there abnormalities on this Chest X-ray?",
    "Tell me about abnormalities on this image",
    "Do any abnormalities appear on this Chest X-ray?",
    "Identify abnormalities on this image",
    "Could you indicate if there are any lesions on this Chest X-ray?",
    "Are there any abnormalities present on this image?",
    "Please identify the abnormalities from this image.",
)
# VinDr-CXR local labels: a location question about one of these is abnormality grounding, else anatomical.
VINDR_LABELS = frozenset(
    label.lower()
    for label in (
        "Aortic enlargement", "Atelectasis", "Calcification", "Cardiomegaly", "Clavicle fracture", "Consolidation",
        "Edema", "Emphysema", "Enlarged PA", "ILD", "Infiltration", "Lung Opacity", "Lung cavity", "Lung cyst",
        "Mediastinal shift", "Nodule/Mass", "Other lesion", "Pleural effusion", "Pleural thickening", "Pneumothorax",
        "Pulmonary fibrosis", "Rib fracture",
    )
)  # fmt: skip


def _template_regex(templates: Sequence[str]) -> re.Pattern:
    """One regex for a family of ``{}`` templates; the one non-empty ``label<i>`` group is the filled-in label."""
    alternatives = [re.escape(t).replace(r"\{\}", f"(?P<label{i}>.+?)") for i, t in enumerate(templates)]
    return re.compile("|".join(f"(?:{a})" for a in alternatives), re.DOTALL)


_REPORT_RE = _template_regex(REPORT_QUESTIONS)
_PHRASE_RE = _template_regex(PHRASE_QUESTIONS)
_LOCATION_RE = _template_regex(LOCATION_QUESTIONS)
_DETECTION_RE = _template_regex(DETECTION_QUESTIONS)
_CLASSIFICATION_RE = _template_regex(CLASSIFICATION_QUESTIONS)


def parse_answer_boxes(text: str) -> list[list[float]]:
    """Every ``[x1, y1, x2, y2]`` group in an answer, in order (``boxes.parse_boxes``: the reward's own parser)."""
    return parse_boxes(text).tolist()


def task_from_id(row_id: str) -> str | None:
    """The task RadVLM's id prefix names (``vindr-cxr-mono-train1_12`` -> abnormality grounding), or None."""
    base = re.sub(r"_\d+$", "", row_id.strip())
    base = re.sub(r"\d+$", "", base)
    base = re.sub(r"-(train|test|valid|validate|validation|val|eval)$", "", base)
    return ID_PREFIX_TASKS.get(base)


def _location_task(match: re.Match) -> str:
    label = next(v for v in match.groupdict().values() if v is not None)
    return ABNORMALITY_GROUNDING if label.strip().lower() in VINDR_LABELS else ANATOMICAL_GROUNDING


def task_from_text(questions: Sequence[str], answers: Sequence[str]) -> str:
    """Infer the task from RadVLM's question templates (see the module docstring); ``"unknown"`` when none fits."""
    has_boxes = any(BOX_PATTERN.search(a) for a in answers)
    if len(questions) > 1:
        return GROUNDED_CONVERSATION if has_boxes else CONVERSATION
    if not questions:
        return UNKNOWN_TASK
    question = re.sub(r"\s*/(no_)?think$", "", questions[0].strip())
    if _REPORT_RE.fullmatch(question):
        return REPORT_GENERATION
    if _DETECTION_RE.fullmatch(question):
        return ABNORMALITY_DETECTION
    if _CLASSIFICATION_RE.fullmatch(question):
        return CLASSIFICATION
    if has_boxes and _PHRASE_RE.fullmatch(question):
        return PHRASE_GROUNDING
    if has_boxes and (match := _LOCATION_RE.fullmatch(question)):
        return _location_task(match)
    return UNKNOWN_TASK


# ---------------------------------------------------------------------------------------------------------------------
# Streaming JSON
# ---------------------------------------------------------------------------------------------------------------------

_WS = re.compile(r"\s*")


def _first_char(path: Path) -> str:
    with open(path, encoding="utf-8") as f:
        while chunk := f.read(4096):
            stripped = chunk.lstrip()
            if stripped:
                return stripped[0]
    return ""


def iter_json_records(path: str | os.PathLike, chunk_chars: int = DEFAULT_CHUNK_CHARS) -> Iterator[dict]:
    """Rows of a JSON array or JSON Lines file, one at a time: a 1.1 M-row array never sits in memory whole."""
    path = Path(path)
    first = _first_char(path)
    if first == "[":
        yield from _iter_json_array(path, chunk_chars)
    elif first == "{":
        yield from _iter_json_lines(path)
    elif first:
        raise ValueError(f"{path}: expected a JSON array ('[...]') or JSON Lines ('{{...}}' per line), got {first!r}.")


def _iter_json_lines(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {line_no}: not valid JSON ({err.msg}).") from err


class _ArrayReader:
    """Incremental reader of one top-level JSON array (``json.JSONDecoder.raw_decode`` over buffered chunks)."""

    def __init__(self, f: io.TextIOBase, chunk_chars: int, name: str):
        self.f, self.chunk_chars, self.name = f, max(1, chunk_chars), name
        self.decoder = json.JSONDecoder()
        self.buf, self.pos, self.eof = "", 0, False

    def _more(self) -> bool:
        """Append a chunk (dropping what was consumed); False at end of file."""
        if self.eof:
            return False
        chunk = self.f.read(self.chunk_chars)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def _skip_ws(self) -> str:
        """The next non-blank character (not consumed), reading more as needed; "" at end of file."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return ""

    def _maybe_cut_number(self, value: Any, end: int) -> bool:
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return is_number and (end == len(self.buf) or self.buf[end] not in " \t\r\n,]")

    def _decode_value(self) -> Any:
        if not self._skip_ws():
            raise ValueError(f"{self.name}: truncated JSON array (no value after ',').")
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as err:
                if self._more():
                    continue
                raise ValueError(f"{self.name}: invalid or truncated JSON array ({err.msg}).") from err
            # A number cut by the chunk boundary ("-2." of "-2.5e10") decodes "successfully": trust it only once a
            # separator follows. Strings, objects and arrays end on their own closing character.
            if self._maybe_cut_number(value, end) and self._more():
                continue
            self.pos = end
            return value

    def __iter__(self) -> Iterator[Any]:
        if self._skip_ws() != "[":
            raise ValueError(f"{self.name}: expected a JSON array.")
        self.pos += 1
        if self._skip_ws() == "]":
            return
        while True:
            yield self._decode_value()
            sep = self._skip_ws()
            self.pos += 1
            if sep == "]":
                return
            if sep != ",":
                raise ValueError(
                    f"{self.name}: expected ',' or ']' between JSON array elements, got {sep or 'EOF'!r}."
                )


def _iter_json_array(path: Path, chunk_chars: int) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        yield from _ArrayReader(f, chunk_chars, str(path))


# ---------------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class ImageOptions:
    """How images are found, converted and stored."""

    image_root: str | None = None
    max_pixels: int | None = None
    min_pixels: int | None = None
    image_format: Literal["auto", "png", "jpeg"] = "auto"
    jpeg_quality: int = 95
    skip_missing_images: bool = False
    image_prefix_map: tuple[str, str] | None = None

    def __post_init__(self):
        if self.max_pixels is not None and self.min_pixels is not None and self.min_pixels > self.max_pixels:
            raise ValueError(f"min_pixels ({self.min_pixels}) is larger than max_pixels ({self.max_pixels}).")
        if self.image_format not in ("auto", "png", "jpeg"):
            raise ValueError(f"image_format must be 'auto', 'png' or 'jpeg', got {self.image_format!r}.")


class ImageLoadError(RuntimeError):
    """An image of a row could not be read; the message names the row id and the path."""


def resolve_image_path(image: str, options: ImageOptions) -> Path:
    """``image_root / image`` for relative paths; absolute paths (RadVLM writes them) are remapped by prefix."""
    if options.image_prefix_map is not None:
        old, new = options.image_prefix_map
        if image.startswith(old):
            image = new + image[len(old) :]
    path = Path(image).expanduser()
    if not path.is_absolute() and options.image_root:
        path = Path(options.image_root).expanduser() / path
    return path


def rescale_to_8bit(image: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit or float image as 8-bit "L", min-max rescaled (PIL's own convert clips at 255).

    Many 16-bit CXR PNGs (PadChest) use 12 bits only, so the image's own range is used, not 65535.
    """
    array = np.asarray(image)
    low, high = array.min(), array.max()
    if high <= low:
        return Image.new("L", image.size)
    if array.dtype.kind in "iu" and low >= 0 and high < 1 << 16:
        # A lookup table is several times faster than float arithmetic on a 3000 x 2500 image.
        lut = np.round((np.arange(int(high) + 1, dtype=np.float32) - low) * (255.0 / (high - low)))
        return Image.fromarray(np.clip(lut, 0, 255).astype(np.uint8)[array])
    scaled = (array.astype(np.float32) - np.float32(low)) * np.float32(255.0 / (float(high) - float(low)))
    return Image.fromarray(np.round(scaled).astype(np.uint8))


def to_8bit(image: Image.Image) -> Image.Image:
    """An 8-bit image in a mode that resizes well (L, LA, RGB, RGBA): single-channel images stay single-channel."""
    if image.mode.startswith("I") or image.mode == "F":
        return rescale_to_8bit(image)
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return image
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("RGBA")
    return image.convert("RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for any mode (16-bit and float images rescaled, not clipped); an RGB image is returned as is."""
    image = to_8bit(image)
    return image if image.mode == "RGB" else image.convert("RGB")


def target_size(width: int, height: int, max_pixels: int | None, min_pixels: int | None) -> tuple[int, int]:
    """The size keeping the aspect ratio with ``min_pixels <= width * height <= max_pixels`` (pixel counts)."""
    pixels = width * height
    if max_pixels is not None and pixels > max_pixels:
        scale = math.sqrt(max_pixels / pixels)
        width, height = max(1, math.floor(width * scale)), max(1, math.floor(height * scale))
    elif min_pixels is not None and pixels < min_pixels:
        scale = math.sqrt(min_pixels / pixels)
        width, height = math.ceil(width * scale), math.ceil(height * scale)
    return width, height


def load_image(path: Path, row_id: str, options: ImageOptions) -> dict:
    """The stored image of a row: ``{"bytes", "path"}`` for ``datasets.Image``, RGB and within the pixel limits.

    ``path`` stays None: ``datasets`` drops the bytes of an example whose path is an existing file, and would store
    a reference to the unconverted original instead.
    """
    try:
        with Image.open(path) as source:
            source_format, original_size = source.format, source.size
            size = target_size(*original_size, options.max_pixels, options.min_pixels)
            if source_format == "JPEG" and size != original_size:
                source.draft(source.mode, size)  # DCT-domain downscale: several times faster on large CXRs
            source.load()
            image = to_8bit(source)
            if image.size != size:
                # Resize before RGB (a third of the work on grayscale CXRs); reducing_gap: box-reduce first, fast.
                image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
            image = to_rgb(image)
            unchanged = image is source and size == original_size
    except FileNotFoundError as err:
        raise ImageLoadError(f"Row {row_id!r}: image file not found: {path}") from err
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ImageLoadError(f"Row {row_id!r}: cannot read image {path}: {err}") from err
    fmt = options.image_format
    if fmt == "auto":
        fmt = "jpeg" if source_format == "JPEG" else "png"
    if unchanged and fmt == "jpeg" and source_format == "JPEG":
        return {"bytes": path.read_bytes(), "path": None}  # already RGB JPEG: no re-encoding loss
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=options.jpeg_quality)
    else:
        image.save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


# ---------------------------------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------------------------------

_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


@dataclass
class JsonSource:
    """One input file and the task of all its rows (None: inferred per row)."""

    path: str
    task: str | None = None

    @classmethod
    def parse(cls, spec: str, default_task: str | None = None) -> JsonSource:
        """``"file.json"`` or ``"file.json:task"``; a task must be one of ``schema.ALL_TASKS``."""
        head, sep, tail = spec.rpartition(":")
        if sep and tail in ALL_TASKS:
            return cls(head, tail)
        if sep and not Path(spec).exists() and re.fullmatch(r"[a-z_]+", tail):
            raise ValueError(f"Unknown task {tail!r} in {spec!r}; expected one of {list(ALL_TASKS)}.")
        if default_task is not None and default_task not in ALL_TASKS:
            raise ValueError(f"Unknown task {default_task!r}; expected one of {list(ALL_TASKS)}.")
        return cls(spec, default_task)


@dataclass
class ParsedRow:
    """A RadVLM row read into messages, before images are loaded."""

    id: str
    messages: list[dict]
    image_paths: list[str]
    questions: list[str]
    answers: list[str]


def _text_parts(value: str, row_id: str, role: str) -> tuple[list[dict], int]:
    """Content parts of one turn: each ``<image>`` tag becomes an image part; the newline after a tag goes."""
    pieces = value.split(IMAGE_TAG)
    if len(pieces) == 1:
        return [{"type": "text", "text": value}], 0
    if role != "user":
        raise ValueError(f"Row {row_id!r}: an {IMAGE_TAG} tag in a {role} turn; only user turns carry images.")
    parts: list[dict] = []
    for i, piece in enumerate(pieces):
        if i > 0:
            parts.append({"type": "image", "text": None})
        if piece.strip():
            parts.append({"type": "text", "text": piece.strip()})
    return parts, len(pieces) - 1


def parse_row(record: dict, fallback_id: str) -> ParsedRow:
    """Messages in TRL's multimodal form, image parts where the ``<image>`` tags were."""
    row_id = str(record.get("id", fallback_id))
    conversations = record.get("conversations")
    if not isinstance(conversations, list) or not conversations:
        raise ValueError(f"Row {row_id!r}: no 'conversations' list.")
    image = record.get("image")
    image_paths = [] if image is None else [image] if isinstance(image, str) else list(image)
    messages, questions, answers, n_tags = [], [], [], 0
    for turn in conversations:
        role = _ROLES.get(turn.get("from", turn.get("role")))
        if role is None:
            raise ValueError(f"Row {row_id!r}: unknown speaker {turn.get('from')!r}.")
        value = str(turn.get("value", turn.get("content", "")))
        parts, tags = _text_parts(value, row_id, role)
        n_tags += tags
        messages.append({"role": role, "content": parts})
        if role == "user":
            questions.append(value.replace(IMAGE_TAG, "").strip())
        elif role == "assistant":
            answers.append(value)
    if n_tags == 0 and image_paths:
        first_user = next((m for m in messages if m["role"] == "user"), None)
        if first_user is None or len(image_paths) != 1:
            raise ValueError(f"Row {row_id!r}: {len(image_paths)} image(s) but no {IMAGE_TAG} tag to place them.")
        first_user["content"].insert(0, {"type": "image", "text": None})
    elif n_tags != len(image_paths):
        raise ValueError(f"Row {row_id!r}: {n_tags} {IMAGE_TAG} tag(s) but {len(image_paths)} image path(s).")
    return ParsedRow(row_id, messages, image_paths, questions, answers)


def add_think_suffix(messages: list[dict]) -> None:
    """Append " /think" (Qwen3's thinking switch, as RadVLM-Thinking prompts do) to every user turn's question."""
    for message in messages:
        if message["role"] != "user":
            continue
        texts = [p for p in message["content"] if p["type"] == "text"]
        if not texts:
            message["content"].append({"type": "text", "text": THINK_SUFFIX.strip()})
        elif not texts[-1]["text"].endswith(THINK_SUFFIX):
            texts[-1]["text"] += THINK_SUFFIX


def row_task(row: ParsedRow, file_task: str | None) -> str:
    return file_task or task_from_id(row.id) or task_from_text(row.questions, row.answers)


def grpo_skip_reason(row: ParsedRow, task: str) -> str | None:
    """Why a row cannot be a GRPO row (None: it can); GRPO takes single-turn, single-image rows of its tasks."""
    roles = [m["role"] for m in row.messages if m["role"] != "system"]
    if roles != ["user", "assistant"]:
        return "multi_turn"
    if len(row.image_paths) != 1:
        return "not_single_image"
    if task not in GRPO_TASKS:
        return f"task_{task}"
    if task in GROUNDING_TASKS and not parse_answer_boxes(row.answers[0]):
        return "grounding_without_boxes"
    return None


# ---------------------------------------------------------------------------------------------------------------------
# Dataset building
# ---------------------------------------------------------------------------------------------------------------------


def _load_images(row: ParsedRow, options: ImageOptions, stats: Counter) -> list[dict] | None:
    images = []
    for image in row.image_paths:
        try:
            images.append(load_image(resolve_image_path(image, options), row.id, options))
        except ImageLoadError as err:
            if not options.skip_missing_images:
                raise
            stats["skipped_missing_image"] += 1
            logger.warning("%s (skipped)", err)
            return None
    return images


def _sft_example(row: ParsedRow, task: str, images: list[dict]) -> dict:
    return {"messages": row.messages, "images": images, "task": task, "id": row.id}


def _grpo_example(row: ParsedRow, task: str, images: list[dict]) -> dict:
    prompt = [m for m in row.messages if m["role"] != "assistant"]
    solution = row.answers[0]
    boxes = parse_answer_boxes(solution) if task in GROUNDING_TASKS else []
    return {"prompt": prompt, "image": images[0], "solution": solution, "boxes": boxes, "task": task, "id": row.id}


def generate_examples(
    sources: Sequence[JsonSource],
    schema: str,
    options: ImageOptions,
    thinking: bool = False,
    max_rows: int | None = None,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    stats: Counter | None = None,
    row_range: tuple[int, int | None] = (0, None),
) -> Iterator[dict]:
    """Examples of the SFT or GRPO schema, one at a time; ``stats`` counts what was read, kept and skipped.

    ``row_range`` selects rows by their position over all files (start, stop): a worker's share when converting in
    parallel; the rows before it are parsed (cheap) but not converted.
    """
    stats = Counter() if stats is None else stats
    start, stop = row_range
    position = -1
    for source in sources:
        progress = tqdm(desc=Path(source.path).name, unit=" rows", mininterval=2.0)
        for index, record in enumerate(iter_json_records(source.path, chunk_chars)):
            position += 1
            if position < start:
                continue
            if (stop is not None and position >= stop) or (max_rows is not None and stats["written"] >= max_rows):
                break
            progress.update()
            stats["read"] += 1
            row = parse_row(record, fallback_id=f"{Path(source.path).stem}_{index}")
            task = row_task(row, source.task)
            if schema == "grpo" and (reason := grpo_skip_reason(row, task)):
                stats[f"skipped_{reason}"] += 1
                continue
            if thinking:
                add_think_suffix(row.messages)
            images = _load_images(row, options, stats)
            if images is None:
                continue
            example = _sft_example(row, task, images) if schema == "sft" else _grpo_example(row, task, images)
            if example.get("boxes") and not valid_mask(np.asarray(example["boxes"])).all():
                # Kept (the reward scores such a truth 0), but counted: usually a wrong scale in the source data.
                stats["rows_with_invalid_boxes"] += 1
            stats["written"] += 1
            stats[f"task_{task}"] += 1
            yield example
        progress.close()
        if stop is not None and position >= stop:
            break


def count_records(sources: Sequence[JsonSource], chunk_chars: int = DEFAULT_CHUNK_CHARS) -> int:
    """Rows over all files (JSON parsing only: about 150 k rows/s), to split the work between processes."""
    return sum(1 for source in sources for _ in iter_json_records(source.path, chunk_chars))


def _sources_signature(sources: Sequence[JsonSource]) -> tuple:
    """Size and mtime of each file, so that ``from_generator``'s cache never serves a stale conversion."""
    signature = []
    for source in sources:
        path = Path(source.path)
        if not path.is_file():
            raise FileNotFoundError(f"RadVLM JSON file not found: {path}")
        stat = path.stat()
        signature.append((str(path.resolve()), stat.st_size, stat.st_mtime_ns, source.task))
    return tuple(signature)


def _generate(
    signature: tuple, shards: list[tuple[int, int | None]], stats: Counter, stats_dir: str | None, **kwargs
) -> Iterator[dict]:
    """``from_generator``'s generator: ``shards`` is a list so that ``num_proc`` workers each take some."""
    del signature  # only hashed into the cache fingerprint
    for row_range in shards:
        shard_stats: Counter = Counter()
        yield from generate_examples(**kwargs, stats=shard_stats, row_range=row_range)
        stats.update(shard_stats)  # seen by the caller when running in its process
        if stats_dir is not None:  # worker processes report through files
            (Path(stats_dir) / f"shard_{row_range[0]}.json").write_text(json.dumps(shard_stats))


def _row_ranges(total: int, parts: int) -> list[tuple[int, int | None]]:
    bounds = [round(i * total / parts) for i in range(parts + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(parts) if bounds[i + 1] > bounds[i]] or [(0, None)]


def build_dataset(
    sources: Sequence[JsonSource],
    schema: Literal["sft", "grpo"],
    options: ImageOptions | None = None,
    thinking: bool = False,
    max_rows: int | None = None,
    cache_dir: str | None = None,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    num_proc: int | None = None,
) -> tuple[Dataset, Counter]:
    """Stream the JSON files into one Arrow-backed Dataset of the schema; returns it with the counts.

    ``num_proc`` > 1 splits the rows into contiguous ranges converted in parallel (image decoding dominates: about
    25 rows/s per process on 3000 x 2500 JPEGs); the row order is kept. ``max_rows`` runs in one process.
    """
    if schema not in ("sft", "grpo"):
        raise ValueError(f"schema must be 'sft' or 'grpo', got {schema!r}.")
    options = options or ImageOptions()
    parallel = num_proc is not None and num_proc > 1 and max_rows is None
    stats: Counter = Counter()
    stats_dir = tempfile.mkdtemp(prefix="radvlm_stats_") if parallel else None
    gen_kwargs = {
        "signature": _sources_signature(sources),
        "shards": _row_ranges(count_records(sources, chunk_chars), num_proc) if parallel else [(0, None)],
        "stats": stats,
        "stats_dir": stats_dir,
        "sources": tuple(sources),  # a tuple: only `shards` may be a list, the one thing datasets splits
        "schema": schema,
        "options": options,
        "thinking": thinking,
        "max_rows": max_rows,
        "chunk_chars": chunk_chars,
    }
    features = SFT_FEATURES if schema == "sft" else GRPO_FEATURES
    try:
        dataset = Dataset.from_generator(
            _generate,
            features=features,
            gen_kwargs=gen_kwargs,
            cache_dir=cache_dir,
            num_proc=num_proc if parallel else None,
        )
    except DatasetGenerationError as err:
        if (ours := conversion_error(err)) is not None:
            raise ours from None
        raise
    except ValueError as err:
        _collect_stats(stats, stats_dir)
        if stats["written"] or "corresponds to no data" not in str(err):
            raise
        logger.warning("No row of %s fits the %s schema: %s", [s.path for s in sources], schema, dict(stats))
        return Dataset.from_dict({name: [] for name in features}, features=features), stats
    finally:
        _collect_stats(stats, stats_dir)  # also removes the folder, whatever happened
    if not stats:
        logger.info("The conversion was served from the datasets cache; no counts this time.")
    return dataset, stats


_REMOTE_ERROR = re.compile(
    r"^(?:radvlm_grpo\.data\.radvlm_json\.)?(ImageLoadError|ValueError|FileNotFoundError): (.+)$", re.M
)


def conversion_error(err: DatasetGenerationError) -> Exception | None:
    """Our own clear error (row id, path) behind datasets' generic wrapper, from this process or a worker."""
    cause = err.__cause__
    if isinstance(cause, (ImageLoadError, ValueError, OSError)):
        return cause.with_traceback(cause.__traceback__)
    remote = getattr(cause, "tb", None)  # multiprocess' RemoteTraceback: the worker's traceback as text
    if isinstance(remote, str) and (matches := _REMOTE_ERROR.findall(remote)):
        kind, message = matches[-1]  # the traceback lists the chain oldest first
        return {"ImageLoadError": ImageLoadError, "ValueError": ValueError}.get(kind, FileNotFoundError)(message)
    return None


def _collect_stats(stats: Counter, stats_dir: str | None) -> None:
    """Add the workers' counts to ``stats`` and remove their folder (a second call finds nothing)."""
    if stats_dir is None or not Path(stats_dir).is_dir():
        return
    for path in sorted(Path(stats_dir).glob("shard_*.json")):
        stats.update(json.loads(path.read_text()))
    shutil.rmtree(stats_dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class PrepareDataConfig:
    """Options of ``scripts/prepare_data.py`` (RadVLM JSON -> SFT or GRPO dataset)."""

    json: list[str] = field(
        default_factory=list,
        metadata={"help": "RadVLM JSON array or JSON Lines files, each optionally with its task: file.json:task."},
    )
    image_root: str | None = field(default=None, metadata={"help": "Folder that relative image paths start from."})
    schema: Literal["sft", "grpo"] = field(default="grpo", metadata={"help": "Which schema to write (schema.py)."})
    task: str | None = field(
        default=None, metadata={"help": "Task of every file given without ':task' (default: inferred per row)."}
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "Where to save_to_disk; the split is added to a DatasetDict there."}
    )
    split: str = field(default="train", metadata={"help": "Split name of the converted rows."})
    thinking: bool = field(default=False, metadata={"help": "Append ' /think' to every question (RadVLM-Thinking)."})
    max_pixels: int | None = field(
        default=None, metadata={"help": "Downscale images to at most this many pixels (e.g. 451584), aspect kept."}
    )
    min_pixels: int | None = field(default=None, metadata={"help": "Upscale images to at least this many pixels."})
    image_format: Literal["auto", "png", "jpeg"] = field(
        default="auto", metadata={"help": "Stored encoding; auto: JPEG sources stay JPEG (q95), the rest PNG."}
    )
    image_prefix_map: str | None = field(
        default=None,
        metadata={"help": "OLD=NEW: rewrite image paths starting with OLD (RadVLM writes absolute ones)."},
    )
    skip_missing_images: bool = field(
        default=False, metadata={"help": "Skip and count rows whose image is missing or unreadable, not fail."}
    )
    max_rows: int | None = field(default=None, metadata={"help": "Stop after this many written rows (debug sets)."})
    num_proc: int | None = field(
        default=None, metadata={"help": "Convert in this many processes (image decoding is the bottleneck)."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace the split if output_dir already holds it."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub dataset repo id to push the split to."})
    hub_public: bool = field(
        default=False,
        metadata={"help": "Make the Hub repo public. MIMIC-CXR-derived data is credentialed: private by default."},
    )
    allow_public_credentialed: bool = field(
        default=False,
        metadata={"help": "With --hub_public: confirm that you may redistribute this credentialed data."},
    )
    cache_dir: str | None = field(
        default=None, metadata={"help": "Scratch folder for the Arrow shards before saving (default: a temp dir)."}
    )

    def __post_init__(self):
        if not self.json:
            raise ValueError("Give at least one RadVLM JSON file with --json.")
        if not self.output_dir and not self.push_to_hub:
            raise ValueError("Give --output_dir, --push_to_hub, or both.")
        if self.image_prefix_map is not None and "=" not in self.image_prefix_map:
            raise ValueError(f"--image_prefix_map takes OLD=NEW, got {self.image_prefix_map!r}.")

    def sources(self) -> list[JsonSource]:
        return [JsonSource.parse(spec, self.task) for spec in self.json]

    def image_options(self) -> ImageOptions:
        prefix_map = tuple(self.image_prefix_map.split("=", 1)) if self.image_prefix_map else None
        return ImageOptions(
            image_root=self.image_root,
            max_pixels=self.max_pixels,
            min_pixels=self.min_pixels,
            image_format=self.image_format,
            skip_missing_images=self.skip_missing_images,
            image_prefix_map=prefix_map,
        )


def _saved_splits(output_dir: Path) -> list[str]:
    dict_json = output_dir / "dataset_dict.json"
    return json.loads(dict_json.read_text())["splits"] if dict_json.is_file() else []


def check_output(output_dir: str | os.PathLike, split: str, overwrite: bool = False) -> None:
    """Fail when ``split`` cannot be written into ``output_dir``: call it before converting (hours on the full set)
    and before pushing, not after. ``save_split`` checks the same again."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{output_dir} is a file, not a folder; choose another --output_dir.")
    if not (output_dir / "dataset_dict.json").is_file() and output_dir.is_dir() and any(output_dir.iterdir()):
        raise FileExistsError(f"{output_dir} exists and is not a DatasetDict folder; choose another --output_dir.")
    if split in _saved_splits(output_dir) and not overwrite:
        raise FileExistsError(f"{output_dir} already holds the split {split!r}; pass --overwrite to replace it.")
    existing = next(p for p in (output_dir, *output_dir.absolute().parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise PermissionError(f"Cannot write {output_dir}: {existing} is not writable; choose another --output_dir.")


def save_split(dataset: Dataset, output_dir: str | os.PathLike, split: str, overwrite: bool = False) -> None:
    """Write one split into a ``save_to_disk`` DatasetDict folder, keeping the splits already there."""
    check_output(output_dir, split, overwrite)
    output_dir = Path(output_dir)
    dict_json = output_dir / "dataset_dict.json"
    splits = _saved_splits(output_dir)
    if (output_dir / split).exists():
        shutil.rmtree(output_dir / split)
    dataset.save_to_disk(str(output_dir / split))
    dict_json.write_text(json.dumps({"splits": [*[s for s in splits if s != split], split]}))


def prepare_dataset(config: PrepareDataConfig) -> DatasetDict | None:
    """Convert, then push and/or save; returns the DatasetDict as saved (None when only pushed: scratch is freed)."""
    sources = config.sources()
    if config.output_dir:
        check_output(config.output_dir, config.split, config.overwrite)  # before hours of conversion and a push
    scratch = config.cache_dir or tempfile.mkdtemp(prefix="radvlm_json_")
    try:
        dataset, stats = build_dataset(
            sources,
            config.schema,
            config.image_options(),
            config.thinking,
            config.max_rows,
            cache_dir=scratch,
            num_proc=config.num_proc,
        )
        print(format_stats(stats))
        if config.push_to_hub:  # private and gated: the RadVLM data derive from credentialed sources
            push_dataset(
                DatasetDict({config.split: dataset}),
                config.push_to_hub,
                sources=["radvlm-instruction-dataset"],
                private=not config.hub_public,
                allow_public_credentialed=config.allow_public_credentialed,
                build_command="python scripts/prepare_data.py " + " ".join(config.json),
            )
        if not config.output_dir:
            return None
        save_split(dataset, config.output_dir, config.split, config.overwrite)
        return load_from_disk(config.output_dir)
    finally:
        if config.cache_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def format_stats(stats: Counter) -> str:
    """A short table of what was read, written (per task) and skipped (per reason)."""
    lines = [f"read {stats['read']} rows, wrote {stats['written']}"]
    lines += [f"  {key}: {value}" for key, value in sorted(stats.items()) if key not in ("read", "written")]
    return "\n".join(lines)
