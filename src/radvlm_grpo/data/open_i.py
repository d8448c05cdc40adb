"""IU X-ray / Open-i reports -> report-generation rows (licence CC BY-NC-ND 4.0: build locally, never push).

Two published layouts are read:

- the Hub's ``ykumards/open-i`` (``load_dataset("ykumards/open-i")``, one ``train`` split): one row per study with
  ``uid``, ``MeSH``, ``Problems``, ``image`` (the exam's description, e.g. "Xray Chest PA and Lateral"),
  ``indication``, ``comparison``, ``findings``, ``impression`` and the study's two images ``img_frontal`` and
  ``img_lateral`` (JPEG bytes; either may be missing);
- the raw layout (the Kaggle "Chest X-rays (Indiana University)" copy): ``indiana_reports.csv`` with the same text
  columns, ``indiana_projections.csv`` (``uid``, ``filename``, ``projection`` Frontal/Lateral) and the image files.
  ``load_open_i_rows`` turns it into rows with an ``images`` list of ``{"projection", "image"}``.

As RadVLM prepares MIMIC-CXR (method.md 1.2): the reference report is the **findings** section, the **impression** when
findings are empty; a study with neither is dropped and counted. Only **frontal** views become rows by default (the
lateral images are dropped and counted; ``include_lateral`` keeps them). Whitespace is collapsed; the "XXXX" of the
de-identification stays as published. Questions are RadVLM's 15 report questions, drawn per row with a seeded
generator. Splits are by study ``uid`` (Open-i has no patient id; ``public.assign_split``).
"""

from __future__ import annotations

import csv
import logging
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from radvlm_grpo.data.public import DEFAULT_RATIOS, DEFAULT_SEED, assign_split, build_datasets, encode_or_skip
from radvlm_grpo.data.radvlm_json import ImageOptions
from radvlm_grpo.vocab.prompts import report_question
from radvlm_grpo.vocab.schema import REPORT_GENERATION, user_turn

logger = logging.getLogger(__name__)

FRONTAL, LATERAL = "frontal", "lateral"
ID_PREFIX = "openi"
REPORTS_CSV, PROJECTIONS_CSV = "indiana_reports.csv", "indiana_projections.csv"


def clean_text(value: Any) -> str:
    """A report section as one line; missing values (None, NaN, "nan", "None") are empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    text = " ".join(str(value).split())
    return "" if text.lower() in ("nan", "none", "null") else text


def reference_report(row: Mapping[str, Any]) -> tuple[str, str]:
    """``(report, section)``: the findings, else the impression (RadVLM's order), else ``("", "")``."""
    for section in ("findings", "impression"):
        text = clean_text(row.get(section))
        if text:
            return text, section
    return "", ""


def view_of(projection: Any) -> str:
    """Frontal (PA/AP) or lateral, from a projection label ("Frontal", "Lateral", "PA", "LL" ...)."""
    name = clean_text(projection).lower()
    return LATERAL if name.startswith(("lat", "ll", "rl")) else FRONTAL


def study_images(row: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``[(view, image), ...]`` of a study in either layout; missing images are left out."""
    if "images" in row and row["images"] is not None:
        return [(view_of(i.get("projection")), i.get("image")) for i in row["images"] if i.get("image") is not None]
    return [(view, row.get(f"img_{view}")) for view in (FRONTAL, LATERAL) if row.get(f"img_{view}") is not None]


def open_i_rows(
    rows: Iterable[Mapping[str, Any]],
    options: ImageOptions | None = None,
    include_lateral: bool = False,
    seed: int = DEFAULT_SEED,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    stats: Counter | None = None,
    lateral_only: bool = False,
) -> Iterator[dict]:
    """GRPO rows (plus ``split``) of Open-i studies, one per kept image; ``stats`` counts what was kept and why not.

    ``lateral_only`` keeps the lateral views alone: views a frontal-trained model never saw, an out-of-distribution
    test set from the same studies (same split by ``uid`` as the frontal rows).
    """
    options = options or ImageOptions()
    stats = Counter() if stats is None else stats
    for position, row in enumerate(rows):
        stats["studies_read"] += 1
        uid = clean_text(row.get("uid")) or str(position)
        report, section = reference_report(row)
        images = study_images(row)
        if not report:
            stats["studies_dropped_no_findings_or_impression"] += 1
            continue
        frontal = [image for view, image in images if view == FRONTAL]
        lateral = [image for view, image in images if view == LATERAL]
        if not frontal:
            stats["studies_without_frontal_image"] += 1
        keep_lateral = include_lateral or lateral_only
        if not keep_lateral:
            stats["lateral_images_dropped"] += len(lateral)
        if lateral_only:
            stats["frontal_images_dropped"] += len(frontal)
        kept = ([] if lateral_only else [(FRONTAL, i) for i in frontal]) + (
            [(LATERAL, i) for i in lateral] if keep_lateral else []
        )
        split = assign_split(uid, seed, ratios)
        counts = Counter(view for view, _ in kept)
        seen: Counter = Counter()
        for view, image in kept:
            seen[view] += 1
            row_id = f"{ID_PREFIX}-{uid}-{view}" + (f"-{seen[view]}" if counts[view] > 1 else "")
            result = encode_or_skip(image, row_id, options, stats)
            if result is None:
                continue
            stored = result[0]
            rng = random.Random(f"{seed}:{row_id}")
            stats[f"report_from_{section}"] += 1
            stats[f"rows_{split}"] += 1
            stats[f"rows_{view}"] += 1
            yield {
                "prompt": [user_turn(report_question(rng))],
                "image": stored,
                "solution": report,
                "boxes": [],
                "task": REPORT_GENERATION,
                "id": row_id,
                "split": split,
            }


def convert_open_i(
    rows: Iterable[Mapping[str, Any]],
    schema: str = "both",
    options: ImageOptions | None = None,
    include_lateral: bool = False,
    seed: int = DEFAULT_SEED,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    cache_dir: str | None = None,
    stats: Counter | None = None,
    lateral_only: bool = False,
) -> dict[str, DatasetDict]:
    """Open-i rows (a loaded ``ykumards/open-i`` split, or ``load_open_i_rows``) -> ``{"grpo"/"sft": DatasetDict}``."""

    def make_rows() -> Iterator[dict]:
        return open_i_rows(rows, options, include_lateral, seed, ratios, stats, lateral_only)

    return build_datasets(make_rows, schema, cache_dir)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def raw_layout_rows(folder: str | Path) -> list[dict]:
    """Studies of the raw layout (module docstring) with their images as paths; an image is looked up under
    ``folder``, ``folder/images`` and ``folder/images/images_normalized`` (the Kaggle copy's folder).

    Missing CSVs, or no image found at all (the images not downloaded, or elsewhere), fail here with the fix; a few
    missing images fail (or are skipped) when their rows are converted.
    """
    folder = Path(folder)
    for name in (REPORTS_CSV, PROJECTIONS_CSV):
        if not (folder / name).is_file():
            raise FileNotFoundError(
                f"{folder / name} not found: the raw Open-i layout is {REPORTS_CSV}, {PROJECTIONS_CSV} and the image "
                "files (the Kaggle copy's images/images_normalized/) in one --data_dir."
            )
    reports = _read_csv(folder / REPORTS_CSV)
    images: dict[str, list[dict]] = {}
    roots = [folder, folder / "images", folder / "images" / "images_normalized"]
    found = listed = 0
    for projection in _read_csv(folder / PROJECTIONS_CSV):
        name = projection["filename"]
        path = next((root / name for root in roots if (root / name).is_file()), None)
        listed, found = listed + 1, found + (path is not None)
        images.setdefault(clean_text(projection["uid"]), []).append(
            {"projection": projection.get("projection"), "image": str(path or roots[-1] / name)}
        )
    if listed and not found:
        raise FileNotFoundError(
            f"None of the {listed} images listed in {PROJECTIONS_CSV} is in {', '.join(map(str, roots))}. "
            "Put the image files (the Kaggle copy's images/images_normalized/ folder) into --data_dir."
        )
    return [{**report, "images": images.get(clean_text(report.get("uid")), [])} for report in reports]


def load_open_i_rows(hub_id: str, data_dir: str | None = None) -> Iterable[Mapping[str, Any]]:
    """The studies to convert: the raw layout in ``data_dir``, a local copy of the Hub dataset, or the Hub itself
    (downloaded at run time into the Hub cache: the ND licence allows using the original, not sharing copies)."""
    from datasets import concatenate_datasets, load_dataset

    from radvlm_grpo.data.loading import load_recipe_dataset

    if data_dir and not Path(data_dir).exists():
        raise FileNotFoundError(
            f"--data_dir {data_dir} does not exist. Give the raw Open-i layout ({REPORTS_CSV}, {PROJECTIONS_CSV} and "
            "the images) or a saved copy of ykumards/open-i, or leave --data_dir out to read the Hub."
        )
    if data_dir and any((Path(data_dir) / name).is_file() for name in (REPORTS_CSV, PROJECTIONS_CSV)):
        return raw_layout_rows(data_dir)
    # Its "image" column is the exam's description, not an image: no path check.
    dataset = load_recipe_dataset(data_dir, check_images=False) if data_dir else load_dataset(hub_id)
    parts = list(dataset.values())
    return parts[0] if len(parts) == 1 else concatenate_datasets(parts)
