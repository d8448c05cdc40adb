"""NIH ChestX-ray14 boxes -> abnormality-grounding rows (public domain; NIH asks for citation and acknowledgement).

The published files (NIH's Box folder, mirrored under ``data/`` of the Hub's ``alkzar90/NIH-Chest-X-ray-dataset``):

- ``BBox_List_2017.csv``: 984 boxes on 880 images, 8 findings. Columns ``Image Index`` (``00013118_008.png``),
  ``Finding Label`` (Atelectasis, Cardiomegaly, Effusion, Infiltrate, Mass, Nodule, Pneumonia, Pneumothorax) and the
  box as ``Bbox [x``, ``y``, ``w``, ``h]`` in pixels of the 1024 x 1024 image (top-left corner, width, height; the
  header's brackets split the names), plus empty trailing columns;
- ``Data_Entry_2017.csv`` / ``Data_Entry_2017_v2020.csv``: one row per image with ``Image Index`` and ``Patient ID``
  (an image is named ``<patient id, 8 digits>_<follow-up, 3 digits>.png``, the fallback when no table is given);
- the images, 1024 x 1024 PNGs, in ``images_001`` ... ``images_012`` folders (NIH) or ``data/images/images_0XX.zip``
  archives (the Hub mirror). The mirror's loading script cannot run on datasets >= 4, so the raw files are read.

One row per (image, finding label) with **all** boxes of that label, as RadVLM's single-label VinDr-CXR abnormality
grounding (method.md 3.2): the location question and answer templates with the label's name, boxes normalised to
[x1, y1, x2, y2] in [0, 1] by NIH's 1024 x 1024 frame, clipped to the image and written with ``round(v, 2)``, ordered
left to right then top to bottom. The frame is fixed, not read from the image files: resized copies of NIH (512 or
224 pixels) are common and their boxes are the same fractions of the image. (``Data_Entry_2017.csv``'s
``OriginalImage[Width,Height]`` is the DICOM's size before NIH's resize to 1024, not the frame of the boxes.) A box
reaching outside the frame is clipped, counted and named in a warning; one left empty is dropped, counted and named.
Labels take the name RadVLM's VinDr-CXR data uses for the same finding (Effusion -> "Pleural effusion", Infiltrate ->
"Infiltration") and are lowercased by the templates as RadVLM lowercases them. Splits are by ``Patient ID``
(``public.assign_split``); all 880 boxed images are in NIH's official test list, which is therefore not used.
"""

from __future__ import annotations

import csv
import logging
import random
import re
import tarfile
import zipfile
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import DatasetDict

from radvlm_grpo.data.public import (
    DEFAULT_RATIOS,
    DEFAULT_SEED,
    ArchiveMember,
    assign_split,
    build_datasets,
    encode_or_skip,
)
from radvlm_grpo.data.radvlm_json import ImageLoadError, ImageOptions
from radvlm_grpo.vocab.prompts import grounding_answer, grounding_question
from radvlm_grpo.vocab.schema import ABNORMALITY_GROUNDING, user_turn

logger = logging.getLogger(__name__)

ID_PREFIX = "nih"
BBOX_CSV = "BBox_List_2017.csv"
DATA_ENTRY_CSVS = ("Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv")
NIH_IMAGE_SIZE = (1024, 1024)  # every published PNG, and the frame of BBox_List_2017.csv's pixel boxes
# NIH label -> the name RadVLM's VinDr-CXR data gives the same finding; the others keep their own name.
LABEL_NAMES = {
    "Atelectasis": "Atelectasis",
    "Cardiomegaly": "Cardiomegaly",
    "Effusion": "Pleural effusion",
    "Infiltrate": "Infiltration",
    "Infiltration": "Infiltration",
    "Mass": "Mass",
    "Nodule": "Nodule",
    "Pneumonia": "Pneumonia",
    "Pneumothorax": "Pneumothorax",
}


def label_name(label: str) -> str:
    """RadVLM's name for an NIH label (module docstring); unknown labels with "_" as spaces."""
    label = label.strip()
    return LABEL_NAMES.get(label, label.replace("_", " "))


def _column(key: str) -> str:
    """``"Bbox [x"`` -> ``"x"``, ``"h]"`` -> ``"h"``, ``"Image Index"`` -> ``"image index"``."""
    return re.sub(r"^bbox\s*\[|\]$", "", key.strip().lower()).strip()


def parse_bbox_row(row: Mapping[str, Any]) -> tuple[str, str, tuple[float, float, float, float]]:
    """``(image index, finding label, (x, y, w, h) in pixels)`` of one ``BBox_List_2017.csv`` row."""
    values = {_column(str(k)): v for k, v in row.items() if k is not None}
    try:
        image, label = str(values["image index"]).strip(), str(values["finding label"]).strip()
        box = tuple(float(values[c]) for c in ("x", "y", "w", "h"))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"Not a BBox_List_2017.csv row (Image Index, Finding Label, Bbox [x, y, w, h]): {dict(row)}"
        ) from err
    return image, label, box  # type: ignore[return-value]


def patient_of(image: str, patient_ids: Mapping[str, Any] | None = None) -> str:
    """The patient of an image: ``Data_Entry_2017.csv``'s ``Patient ID``, else the image name's first field."""
    if patient_ids and str(patient_ids.get(image, "")).strip():
        return str(patient_ids[image]).strip()
    head = image.split("_")[0]
    return str(int(head)) if head.isdigit() else Path(image).stem


def normalise_box(box: Sequence[float], width: int, height: int) -> list[float]:
    """Pixel ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]`` in [0, 1] of the given image size, clipped, ``round(v, 2)``."""
    x, y, w, h = box
    corners = (x / width, y / height, (x + w) / width, (y + h) / height)
    return [round(min(max(v, 0.0), 1.0), 2) for v in corners]


def inside_frame(box: Sequence[float], width: int, height: int) -> bool:
    """Whether a pixel ``[x, y, w, h]`` lies within a ``width`` x ``height`` image (edges included)."""
    x, y, w, h = box
    return x >= 0 and y >= 0 and x + w <= width + 1e-6 and y + h <= height + 1e-6


def group_boxes(bbox_rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], list[tuple[float, ...]]]:
    """``{(image, label): [pixel boxes]}`` in the file's order: all boxes of one label of one image together."""
    groups: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    for row in bbox_rows:
        image, label, box = parse_bbox_row(row)
        groups.setdefault((image, label), []).append(box)
    return groups


def nih_rows(
    bbox_rows: Iterable[Mapping[str, Any]],
    images: Mapping[str, Any],
    patient_ids: Mapping[str, Any] | None = None,
    options: ImageOptions | None = None,
    seed: int = DEFAULT_SEED,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    stats: Counter | None = None,
) -> Iterator[dict]:
    """GRPO rows (plus ``split``) of the NIH boxes; ``images`` maps an ``Image Index`` to its image (path, bytes, PIL,
    ``ArchiveMember``). ``stats`` counts boxes, rows per split and label, and what was skipped."""
    options = options or ImageOptions()
    stats = Counter() if stats is None else stats
    groups = group_boxes(bbox_rows)
    stats["boxes_read"] += sum(len(b) for b in groups.values())
    encoded: dict[str, tuple[dict, tuple[int, int]]] = {}
    for (image_name, label), pixel_boxes in groups.items():
        name = label_name(label)
        row_id = f"{ID_PREFIX}-{Path(image_name).stem}-{name.lower().replace(' ', '-')}"
        if image_name not in images:
            if not options.skip_missing_images:
                raise ImageLoadError(
                    f"Row {row_id!r}: image {image_name} is not among the images given; point --data_dir at the NIH "
                    "images, or pass --skip_missing_images."
                )
            stats["skipped_missing_image"] += 1
            continue
        if image_name not in encoded:
            encoded.clear()  # one image's rows are consecutive in the file: keep only the current image
            result = encode_or_skip(images[image_name], row_id, options, stats)
            if result is None:
                continue
            encoded[image_name] = result
            _count_image_size(image_name, encoded[image_name][1], stats)
        stored = encoded[image_name][0]
        valid = frame_boxes(pixel_boxes, row_id, stats)
        if not valid:
            continue
        split = assign_split(patient_of(image_name, patient_ids), seed, ratios)
        rng = random.Random(f"{seed}:{row_id}")
        question = grounding_question(ABNORMALITY_GROUNDING, name, rng)
        answer = grounding_answer(ABNORMALITY_GROUNDING, name, valid, rng)
        stats[f"rows_{split}"] += 1
        stats[f"label_{name.lower()}"] += 1
        yield {
            "prompt": [user_turn(question)],
            "image": stored,
            "solution": answer,
            "boxes": valid,
            "task": ABNORMALITY_GROUNDING,
            "id": row_id,
            "split": split,
        }


def _count_image_size(image_name: str, size: tuple[int, int], stats: Counter) -> None:
    """Resized copies are fine (the boxes are fractions of the frame); a non-square one was cropped or padded."""
    if size == NIH_IMAGE_SIZE:
        return
    stats["images_not_1024x1024"] += 1
    if size[0] != size[1]:
        stats["images_not_square"] += 1
        logger.warning(
            "%s is %d x %d, not square: NIH's images are 1024 x 1024 and its boxes are placed in that frame, so a "
            "cropped or padded copy gets shifted boxes. Use NIH's own images or a copy resized as a whole.",
            image_name,
            *size,
        )


def frame_boxes(pixel_boxes: Sequence[Sequence[float]], row_id: str, stats: Counter) -> list[list[float]]:
    """A row's boxes normalised by NIH's 1024 x 1024 frame (never by the file's size), left to right.

    A box reaching outside the frame is clipped; one that is empty once clipped and rounded is dropped. Both are
    counted and named: they point at a wrong row in the CSV, not at something to drop quietly.
    """
    width, height = NIH_IMAGE_SIZE
    boxes = []
    for box in pixel_boxes:
        if not inside_frame(box, width, height):
            stats["boxes_outside_the_image"] += 1
            logger.warning(
                "Row %r: %s box [x, y, w, h] = %s reaches outside the %d x %d image; clipped to it.",
                row_id, BBOX_CSV, list(box), width, height,
            )  # fmt: skip
        normalised = normalise_box(box, width, height)
        if normalised[2] > normalised[0] and normalised[3] > normalised[1]:
            boxes.append(normalised)
        else:
            stats["boxes_dropped_empty_after_rounding"] += 1
            logger.warning(
                "Row %r: %s box %s is empty once clipped and rounded; dropped.", row_id, BBOX_CSV, list(box)
            )
    return sorted(boxes, key=lambda b: (b[0], b[1]))


def convert_nih(
    bbox_rows: Iterable[Mapping[str, Any]],
    images: Mapping[str, Any],
    patient_ids: Mapping[str, Any] | None = None,
    schema: str = "both",
    options: ImageOptions | None = None,
    seed: int = DEFAULT_SEED,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    cache_dir: str | None = None,
    stats: Counter | None = None,
) -> dict[str, DatasetDict]:
    """NIH boxes -> ``{"grpo"/"sft": DatasetDict}`` (see ``nih_rows``); boxed images missing from ``images`` fail
    here, before any conversion (unless ``options.skip_missing_images``)."""
    rows = list(bbox_rows)
    if not (options and options.skip_missing_images):
        check_images_found({parse_bbox_row(row)[0] for row in rows}, images)

    def make_rows() -> Iterator[dict]:
        return nih_rows(rows, images, patient_ids, options, seed, ratios, stats)

    return build_datasets(make_rows, schema, cache_dir)


def check_images_found(wanted: set[str], images: Mapping[str, Any], folder: str | Path | None = None) -> None:
    """One clear error naming the boxed images not found (a wrong folder, or archives still downloading)."""
    missing = sorted(wanted - set(images))
    if not missing:
        return
    where = f" under {folder}" if folder is not None else ""
    raise FileNotFoundError(
        f"{len(missing)} of the {len(wanted)} images named in {BBOX_CSV} are not found{where} (first: "
        f"{', '.join(missing[:3])}). Point --data_dir at the NIH folder with the images (images_*/ folders, or the "
        "images_*.zip / images_*.tar.gz archives), or pass --skip_missing_images to leave their boxes out."
    )


# ---------------------------------------------------------------------------------------------------------------------
# Raw files
# ---------------------------------------------------------------------------------------------------------------------


@dataclass
class NIHSource:
    """What ``convert_nih`` needs, read from the raw files."""

    bbox_rows: list[dict[str, str]]
    images: dict[str, Any]
    patient_ids: dict[str, str]


def read_csv_rows(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return [row for row in csv.DictReader(handle) if any((v or "").strip() for v in row.values() if v)]


def read_patient_ids(path: str | Path) -> dict[str, str]:
    """``{Image Index: Patient ID}`` from ``Data_Entry_2017*.csv``."""
    return {row["Image Index"].strip(): row["Patient ID"].strip() for row in read_csv_rows(path)}


def index_images(root: str | Path, wanted: set[str], scratch: str | Path | None = None) -> dict[str, Any]:
    """Where each wanted image is under ``root``: PNG files in any subfolder, members of ``*.zip`` archives (read
    lazily) and of ``*.tar.gz`` archives (NIH's own batches; extracted to ``scratch``, tar has no random access)."""
    found: dict[str, Any] = {}
    for path in sorted(Path(root).rglob("*")):
        if path.name in wanted and path.is_file():
            found.setdefault(path.name, path)
        elif path.suffix == ".zip" and path.is_file():
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    name = Path(member).name
                    if name in wanted:
                        found.setdefault(name, ArchiveMember(path, member))
        elif path.name.endswith(".tar.gz") and path.is_file() and scratch is not None:
            with tarfile.open(path) as archive:
                for member in archive:
                    name = Path(member.name).name
                    if name in wanted and name not in found and member.isfile():
                        target = Path(scratch) / "nih_images" / name
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.write_bytes(archive.extractfile(member).read())
                        found[name] = target
    return found


def load_nih_files(hub_id: str, data_dir: str | None, scratch: str | Path) -> NIHSource:
    """The raw files from ``data_dir``, or downloaded from the Hub mirror at run time (the CSVs, then the twelve
    image archives, about 42 GB: the 880 boxed images are spread over all of them)."""
    if data_dir is None:
        from huggingface_hub import snapshot_download

        data_dir = str(
            Path(snapshot_download(hub_id, repo_type="dataset", allow_patterns=["data/*.csv", "data/images/*.zip"]))
            / "data"
        )
    folder = Path(data_dir)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"--data_dir {folder} does not exist or is not a folder. Give the NIH folder ({BBOX_CSV}, "
            "Data_Entry_2017*.csv and the images), or leave --data_dir out to download the Hub mirror."
        )
    bbox_path = next(iter(sorted(folder.rglob(BBOX_CSV))), None)
    if bbox_path is None:
        raise FileNotFoundError(
            f"No {BBOX_CSV} under {folder}. Download it from NIH's Box folder (or the Hub mirror's data/ folder) into "
            "--data_dir, next to the images."
        )
    bbox_rows = read_csv_rows(bbox_path)
    entry = next((p for name in DATA_ENTRY_CSVS for p in sorted(folder.rglob(name))), None)
    patient_ids = read_patient_ids(entry) if entry else {}
    if entry is None:
        logger.warning("No Data_Entry_2017 CSV under %s: patients are read from the image names.", folder)
    wanted = {parse_bbox_row(row)[0] for row in bbox_rows}
    images = index_images(folder, wanted, scratch)
    logger.info("Found %d of the %d boxed images under %s", len(images), len(wanted), folder)
    return NIHSource(bbox_rows, images, patient_ids)
