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
step, and ``scripts/prepare_public_data.py``'s options and driver.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import logging
import shutil
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from datasets import Dataset, DatasetDict, Features, Value, load_from_disk
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
from radvlm_grpo.data.schema import GRPO_FEATURES, SFT_FEATURES, assistant_turn

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


# ---------------------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class PreparePublicDataConfig:
    """Options of ``scripts/prepare_public_data.py`` (public dataset -> SFT and/or GRPO folders)."""

    dataset: Literal["open-i", "nih"] = field(
        default="open-i",
        metadata={"help": "open-i: IU X-ray reports (report generation); nih: NIH ChestX-ray14 boxes (grounding)."},
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "Folder to write: OUTPUT_DIR/grpo and/or OUTPUT_DIR/sft, and a README.md."}
    )
    schema: Literal["grpo", "sft", "both"] = field(default="both", metadata={"help": "Which schema(s) to write."})
    hub_id: str | None = field(
        default=None,
        metadata={"help": f"Hub dataset to read (defaults: {OPEN_I_HUB_ID} for open-i, {NIH_HUB_ID} for nih)."},
    )
    data_dir: str | None = field(
        default=None,
        metadata={
            "help": "A local copy instead of the Hub. open-i: a save_to_disk/Parquet copy of ykumards/open-i, or the "
            "raw layout (indiana_reports.csv, indiana_projections.csv, images/). nih: the NIH folder with "
            "BBox_List_2017.csv, Data_Entry_2017*.csv and the images (PNG folders or images_*.zip)."
        },
    )
    include_lateral: bool = field(
        default=False, metadata={"help": "open-i: also write lateral views (RadVLM uses frontal views only)."}
    )
    lateral_only: bool = field(
        default=False,
        metadata={"help": "open-i: write the lateral views alone (an out-of-distribution set for frontal models)."},
    )
    seed: int = field(default=DEFAULT_SEED, metadata={"help": "Seed of the split hash and of the question choice."})
    split_ratios: list[float] = field(
        default_factory=lambda: list(DEFAULT_RATIOS),
        metadata={"help": "Train, validation and test shares of the patients (NIH) or studies (Open-i)."},
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "Downscale images to at most this many pixels (e.g. 451584), aspect kept."}
    )
    min_pixels: int | None = field(default=None, metadata={"help": "Upscale images to at least this many pixels."})
    image_format: Literal["auto", "png", "jpeg"] = field(
        default="auto", metadata={"help": "Stored encoding; auto: JPEG sources stay JPEG (q95), the rest PNG."}
    )
    skip_missing_images: bool = field(
        default=False, metadata={"help": "Skip and count rows whose image is missing or unreadable, not fail."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace what output_dir already holds."})
    push_to_hub: str | None = field(
        default=None,
        metadata={"help": "nih only: Hub dataset repo to push the GRPO rows to. Open-i (no derivatives) is refused."},
    )
    hub_public: bool = field(default=False, metadata={"help": "Make the pushed repo public (NIH is public data)."})
    cache_dir: str | None = field(
        default=None, metadata={"help": "Scratch folder for the Arrow shards before saving (default: a temp dir)."}
    )

    def __post_init__(self) -> None:
        if self.dataset not in ("open-i", "nih"):
            raise ValueError(f"--dataset must be 'open-i' or 'nih', got {self.dataset!r}.")
        if not self.output_dir:
            raise ValueError("--output_dir is required.")
        self.split_ratios = list(check_ratios(self.split_ratios))
        if self.push_to_hub and self.dataset == "open-i":
            from radvlm_grpo.hub import NoDerivativesError, no_derivatives_message

            raise NoDerivativesError(no_derivatives_message(self.push_to_hub, [OPEN_I]))

    @property
    def source(self) -> str:
        return OPEN_I if self.dataset == "open-i" else NIH

    def image_options(self) -> ImageOptions:
        return ImageOptions(
            max_pixels=self.max_pixels,
            min_pixels=self.min_pixels,
            image_format=self.image_format,
            skip_missing_images=self.skip_missing_images,
        )


def save_public_datasets(
    datasets: dict[str, DatasetDict], output_dir: str | Path, source: str, build_command: str, overwrite: bool = False
) -> None:
    """``OUTPUT_DIR/<schema>`` per schema and a README.md dataset card stating the source's licence and terms."""
    from radvlm_grpo.cards import DatasetCardInfo, render_dataset_card
    from radvlm_grpo.hub import public_terms

    output_dir = Path(output_dir)
    for schema, dataset in datasets.items():
        target = output_dir / schema
        if target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} exists; pass --overwrite to replace it.")
            shutil.rmtree(target)
        dataset.save_to_disk(str(target))
    first = next(iter(datasets.values()))
    terms = public_terms([source])
    card = render_dataset_card(
        DatasetCardInfo(
            repo_id=output_dir.name,
            schema="grpo" if "grpo" in datasets else "sft",
            splits={split: len(part) for split, part in first.items()},
            tasks=dict(Counter(t for part in first.values() for t in part["task"])),
            sources=[source],
            build_command=build_command,
            license=terms[source].license,
            terms={source: terms[source].terms},
            description=f"A local conversion of {source} made by radvlm-grpo; see the licence and terms below.",
        )
    )
    card.save(output_dir / "README.md")


def _convert(config: PreparePublicDataConfig, scratch: str, stats: Counter) -> dict[str, DatasetDict]:
    from radvlm_grpo.data import nih, open_i

    common = dict(
        schema=config.schema,
        options=config.image_options(),
        seed=config.seed,
        ratios=config.split_ratios,
        cache_dir=scratch,
        stats=stats,
    )
    if config.dataset == "open-i":
        rows = open_i.load_open_i_rows(config.hub_id or OPEN_I_HUB_ID, config.data_dir)
        return open_i.convert_open_i(
            rows, include_lateral=config.include_lateral, lateral_only=config.lateral_only, **common
        )
    source = nih.load_nih_files(config.hub_id or NIH_HUB_ID, config.data_dir, scratch)
    return nih.convert_nih(source.bbox_rows, source.images, source.patient_ids, **common)


def check_public_output(output_dir: str | Path, schema: str, overwrite: bool = False) -> None:
    """Fail when ``OUTPUT_DIR/<schema>`` exists (without ``overwrite``): call it before a download that may take
    hours. ``save_public_datasets`` checks the same again."""
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise FileExistsError(f"{output_dir} is a file, not a folder; choose another --output_dir.")
    schemas = ("grpo", "sft") if schema == "both" else (schema,)
    existing = [output_dir / s for s in schemas if (output_dir / s).exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists; pass --overwrite to replace it.")


def prepare_public_dataset(config: PreparePublicDataConfig, argv: Sequence[str] = ()) -> dict[str, DatasetDict]:
    """Read the public dataset, convert, save (and push NIH rows if asked); returns the saved datasets."""
    check_public_output(config.output_dir, config.schema, config.overwrite)
    scratch = config.cache_dir or tempfile.mkdtemp(prefix="radvlm_public_")
    stats: Counter = Counter()
    try:
        try:
            datasets = _convert(config, scratch, stats)
        finally:
            print(format_counts(stats))
        command = "python scripts/prepare_public_data.py " + " ".join(argv)
        if config.push_to_hub:
            from radvlm_grpo.hub import push_dataset

            grpo = datasets.get("grpo") or datasets["sft"]
            push_dataset(grpo, config.push_to_hub, sources=[config.source], private=not config.hub_public,
                         build_command=command)  # fmt: skip
        save_public_datasets(datasets, config.output_dir, config.source, command, config.overwrite)
        return {schema: load_from_disk(str(Path(config.output_dir) / schema)) for schema in datasets}
    finally:
        if config.cache_dir is None:
            shutil.rmtree(scratch, ignore_errors=True)


def format_counts(stats: Counter) -> str:
    """What was read, written (per split) and left out (per reason), one count a line."""
    return "\n".join(f"{key}: {value}" for key, value in sorted(stats.items()))
