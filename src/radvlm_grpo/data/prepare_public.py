"""``scripts/prepare_public_data.py``'s options and driver: convert Open-i or NIH ChestX-ray14 (``open_i.py``,
``nih.py``, with the shared pieces of ``public.py``), check the output folder first, save with a dataset card, push."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from datasets import DatasetDict, load_from_disk

from radvlm_grpo.data import nih, open_i
from radvlm_grpo.data.public import (
    DEFAULT_RATIOS,
    DEFAULT_SEED,
    NIH,
    NIH_HUB_ID,
    OPEN_I,
    OPEN_I_HUB_ID,
    check_ratios,
)
from radvlm_grpo.data.radvlm_json import (
    ImageOptions,
)

logger = logging.getLogger(__name__)


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
            from radvlm_grpo.publishing.hub import NoDerivativesError, no_derivatives_message

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
    from radvlm_grpo.publishing.cards import DatasetCardInfo, render_dataset_card
    from radvlm_grpo.publishing.hub import public_terms

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
            from radvlm_grpo.publishing.hub import push_dataset

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
