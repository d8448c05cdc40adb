"""A credential-free data path: IU X-ray / Open-i reports and NIH ChestX-ray14 boxes in the project's schemas.

No public chest X-ray dataset has both reports and boxes (systems.md, datasets), but two together do:

- **IU X-ray / Open-i** (Indiana University via the National Library of Medicine; on the Hub as ``ykumards/open-i``):
  about 3,955 reports with frontal and lateral images. Licence **CC BY-NC-ND 4.0**: non-commercial use with
  attribution, and *no derivatives may be shared*, so converted (resized, re-encoded, re-prompted) copies are built
  locally at run time and never pushed (``hub.push_dataset`` refuses them). Converter: ``open_i.py``.
- **NIH ChestX-ray14** (NIH Clinical Center; on the Hub as ``alkzar90/NIH-Chest-X-ray-dataset``): 112,120 frontal
  images, of which 880 carry 984 radiologist boxes of 8 findings (``BBox_List_2017.csv``). Public domain (CC0 as
  mirrored on Kaggle); NIH asks users to link the original download site, acknowledge the NIH Clinical Center and cite
  Wang et al., CVPR 2017. Converter: ``nih.py``.

**Splits** are by patient where the data allows, deterministic and seeded: a group key (NIH: ``Patient ID``; Open-i
publishes no patient id, so its study ``uid``, which keeps both views of a study together) is hashed with the seed
(SHA-256 of ``"{seed}:{key}"``) to a number in [0, 1) that picks train / validation / test by the ratios. A key's split
depends on nothing else: not the row order, not which other rows are kept (frontal only or with laterals), not the
library versions. With few groups the split sizes follow the ratios only approximately.

This module holds what both converters share: the split rule, image encoding, the neutral rows -> SFT/GRPO datasets
step. ``radvlm_grpo.data.prepare_public`` holds ``scripts/prepare_public_data.py``'s options and driver.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, Features, Value
from datasets import Image as ImageFeature
from datasets.exceptions import DatasetGenerationError
from PIL import Image, UnidentifiedImageError

from radvlm_grpo.data.radvlm_json import (
    ImageLoadError,
    ImageOptions,
    conversion_error,
    target_size,
    to_8bit,
    to_rgb,
)
from radvlm_grpo.vocab.schema import GRPO_FEATURES, SFT_FEATURES, assistant_turn

logger = logging.getLogger(__name__)

OPEN_I = "open-i"
NIH = "nih-chestxray14"
SPLITS = ("train", "validation", "test")
DEFAULT_RATIOS = (0.8, 0.1, 0.1)
DEFAULT_SEED = 42

OPEN_I_HUB_ID = "ykumards/open-i"
NIH_HUB_ID = "alkzar90/NIH-Chest-X-ray-dataset"
IMAGE_FIX = "point --data_dir at the folder holding the images, or pass --skip_missing_images to leave such rows out"

# ---------------------------------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------------------------------


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    if len(ratios) != 3 or any(r < 0 for r in ratios) or not 0.999 <= sum(ratios) <= 1.001:
        raise ValueError(f"Split ratios are three non-negative numbers (train validation test) summing to 1: {ratios}")
    return tuple(float(r) for r in ratios)  # type: ignore[return-value]


def assign_split(key: str, seed: int = DEFAULT_SEED, ratios: Sequence[float] = DEFAULT_RATIOS) -> str:
    """The split of a group (patient or study): its seeded SHA-256 hash in [0, 1) against the cumulative ratios."""
    ratios = check_ratios(ratios)
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for split, ratio in zip(SPLITS, ratios):
        cumulative += ratio
        if position < cumulative:
            return split
    return next(s for s, r in zip(reversed(SPLITS), reversed(ratios)) if r > 0)


# ---------------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveMember:
    """An image inside a zip archive, read only when it is converted (the NIH archives are 4 GB each)."""

    archive: Path
    member: str

    def read(self) -> bytes:
        import zipfile

        with zipfile.ZipFile(self.archive) as archive:
            return archive.read(self.member)


def open_image(source: Any, row_id: str) -> Image.Image:
    """A PIL image from what the published formats hold: PIL, bytes, base64 text, ``{"bytes", "path"}``, a path."""
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, dict):
        source = source.get("bytes") or source.get("path")
    if isinstance(source, ArchiveMember):
        source = source.read()
    if isinstance(source, str) and not Path(source).is_file():
        try:  # some Parquet viewers and exports hold image bytes as base64 text ("/9j/..." for a JPEG)
            source = base64.b64decode(source, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ImageLoadError(
                f"Row {row_id!r}: image file not found (nor base64 data): {source}; {IMAGE_FIX}."
            ) from err
    try:
        if isinstance(source, bytes | bytearray | memoryview):
            return Image.open(io.BytesIO(bytes(source)))
        return Image.open(Path(source))
    except FileNotFoundError as err:
        raise ImageLoadError(f"Row {row_id!r}: image file not found: {source}; {IMAGE_FIX}.") from err
    except (UnidentifiedImageError, OSError, ValueError, TypeError) as err:
        raise ImageLoadError(f"Row {row_id!r}: cannot read its image ({err}); {IMAGE_FIX}.") from err


def encode_or_skip(
    source: Any, row_id: str, options: ImageOptions, stats: Counter
) -> tuple[dict, tuple[int, int]] | None:
    """``encode_image``, or None for an unreadable image when ``options.skip_missing_images`` (counted in ``stats``
    and logged); without that option the ``ImageLoadError`` stops the conversion."""
    try:
        return encode_image(source, row_id, options)
    except ImageLoadError as err:
        if not options.skip_missing_images:
            raise
        stats["skipped_unreadable_image"] += 1
        logger.warning("%s (skipped)", err)
        return None


def encode_image(source: Any, row_id: str, options: ImageOptions) -> tuple[dict, tuple[int, int]]:
    """The stored image (RGB, within the pixel limits, as ``radvlm_json.load_image``) and the source's own size.

    The NIH converter counts the sources that are not 1024 x 1024 (its boxes are in that frame, whatever the size).
    """
    image = open_image(source, row_id)
    try:
        source_format, original_size = image.format, image.size
        size = target_size(*original_size, options.max_pixels, options.min_pixels)
        image.load()
        converted = to_8bit(image)
        if converted.size != size:
            converted = converted.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
        converted = to_rgb(converted)
    except (OSError, ValueError) as err:
        raise ImageLoadError(f"Row {row_id!r}: cannot decode its image ({err}); {IMAGE_FIX}.") from err
    fmt = options.image_format
    if fmt == "auto":
        fmt = "jpeg" if source_format == "JPEG" else "png"
    buffer = io.BytesIO()
    if fmt == "jpeg":
        converted.save(buffer, format="JPEG", quality=options.jpeg_quality)
    else:
        converted.save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}, original_size


# ---------------------------------------------------------------------------------------------------------------------
# Neutral rows -> SFT / GRPO datasets
# ---------------------------------------------------------------------------------------------------------------------

_SPLIT_COLUMN = "split"
_WITH_SPLIT = Features({**GRPO_FEATURES, _SPLIT_COLUMN: Value("string")})


def _rows(make_rows: Callable[[], Iterator[dict]]) -> Iterator[dict]:
    yield from make_rows()


def build_datasets(
    make_rows: Callable[[], Iterator[dict]], schema: str, cache_dir: str | None = None
) -> dict[str, DatasetDict]:
    """``{"grpo": ..., "sft": ...}`` (as ``schema`` asks: grpo, sft or both) from GRPO rows carrying a ``split``.

    Rows are written to Arrow as they come (``from_generator``), so thousands of images never sit in memory. The SFT
    rows are the same conversations (question, then the reference answer) built from the GRPO rows without decoding
    an image again. Splits without rows are left out (datasets cannot load an empty saved split back).
    """
    if schema not in ("grpo", "sft", "both"):
        raise ValueError(f"schema must be 'grpo', 'sft' or 'both', got {schema!r}.")
    try:
        everything = Dataset.from_generator(
            _rows,
            features=_WITH_SPLIT,
            gen_kwargs={"make_rows": make_rows},
            cache_dir=cache_dir,
            fingerprint=uuid.uuid4().hex,  # a fresh conversion every time: the counts come from running the generator
        )
    except DatasetGenerationError as err:
        # datasets wraps what the rows generator raised in a generic error: raise ours (row id, path, fix) instead.
        if (ours := conversion_error(err)) is not None:
            raise ours from None
        raise
    except ValueError as err:
        if "corresponds to no data" not in str(err):
            raise
        raise ValueError("No row was kept: every study or box was dropped (see the counts above).") from err
    present = set(everything.unique(_SPLIT_COLUMN))
    grpo = DatasetDict(
        {
            split: everything.filter(lambda s, wanted=split: s == wanted, input_columns=_SPLIT_COLUMN).remove_columns(
                _SPLIT_COLUMN
            )
            for split in SPLITS
            if split in present
        }
    )
    out: dict[str, DatasetDict] = {}
    if schema in ("grpo", "both"):
        out["grpo"] = grpo
    if schema in ("sft", "both"):
        out["sft"] = DatasetDict({split: to_sft(part) for split, part in grpo.items()})
    return out


def _sft_row(prompt: list[dict], image: dict, solution: str) -> dict:
    return {"messages": [*prompt, assistant_turn(solution)], "images": [image]}


def to_sft(grpo: Dataset) -> Dataset:
    """The SFT form of GRPO rows: the prompt plus the reference answer as the assistant turn; images not decoded."""
    raw = grpo.cast_column("image", ImageFeature(decode=False))
    return raw.map(
        _sft_row,
        input_columns=["prompt", "image", "solution"],
        remove_columns=["prompt", "image", "solution", "boxes"],
        features=Features({**SFT_FEATURES}),
        desc="SFT rows",
    ).select_columns(list(SFT_FEATURES))
