"""Deterministic synthetic chest X-rays with findings at known places, for tests, demos and tiny end-to-end runs.

The real data (MIMIC-CXR, VinDr-CXR, MS-CXR...) cannot be downloaded here, so every stage is exercised on images this
module draws: a dark background, the body, two dark lung fields, the mediastinum and heart, optional ribs, and
high-contrast findings (consolidation, nodules, pleural effusion, cardiomegaly, an endotracheal tube, a pacemaker).
Every box is the tight bounding box of the pixels actually drawn (regions from the anatomy of that image), so
grounding rewards measure something real. Placements come from a small set of anatomical zones plus jitter, and the
report vocabulary is small and fixed, so that a tiny Qwen3-VL can learn the task with SFT and improve with GRPO.

Images are in radiological convention: the patient's right is on the image's left. Row ``index`` of ``split`` is drawn
from its own generator seeded by ``(seed, split, index)``: the same seed gives identical datasets, and changing one
split's size leaves the other splits unchanged. ``python -m radvlm_grpo.data.synthetic OUT_DIR`` writes the data.
The words (report sentences, phrases, region names) and the SFT/GRPO rows live in ``synthetic_tasks``.
"""

from __future__ import annotations

import argparse
import functools
import io
import random
from dataclasses import dataclass, field, fields, replace

import numpy as np
from datasets import DatasetDict
from PIL import Image

from radvlm_grpo.cli import run_cli
from radvlm_grpo.data.synthetic_scene import Finding, Scene, mask_box
from radvlm_grpo.data.synthetic_tasks import REQUIRES, SIDES, ZONES, finding_text, task_text, to_dataset_dict
from radvlm_grpo.vocab.boxes import Box
from radvlm_grpo.vocab.schema import GRPO_TASKS

SPLITS = ("train", "validation", "test")
FINDING_KINDS = ("consolidation", "nodule", "effusion", "cardiomegaly", "ett", "pacemaker")
_ABNORMALITY_KINDS = ("consolidation", "nodule", "effusion", "cardiomegaly")

# Grey levels (0-255) of what is drawn: air is dark, soft tissue grey, fluid and bone bright, metal white.
_BACKGROUND, _SOFT_TISSUE, _LUNG, _MEDIASTINUM, _TRACHEA = 8.0, 100.0, 38.0, 172.0, 70.0
_CONSOLIDATION, _NODULE, _FLUID, _METAL, _RIB = 148.0, 215.0, 152.0, 248.0, 20.0


@dataclass
class SyntheticConfig:
    """What to generate; the defaults give ~2,000 rows of 128x128 images covering the four GRPO tasks."""

    train_size: int = field(default=1600, metadata={"help": "Rows in the train split."})
    validation_size: int = field(default=200, metadata={"help": "Rows in the validation split."})
    test_size: int = field(default=200, metadata={"help": "Rows in the test split."})
    image_size: int = field(default=128, metadata={"help": "Side of the square images, in pixels."})
    seed: int = field(default=0, metadata={"help": "Seed; the same seed gives identical datasets."})
    tasks: tuple[str, ...] = field(
        default=GRPO_TASKS, metadata={"help": "Tasks to generate, assigned to rows in turn (round robin)."}
    )
    p_consolidation: float = field(default=0.3, metadata={"help": "Probability that an image has a consolidation."})
    p_nodule: float = field(default=0.3, metadata={"help": "Probability that an image has nodule(s)."})
    max_nodules: int = field(default=2, metadata={"help": "Most nodules in one image (1 to 4)."})
    p_effusion: float = field(default=0.3, metadata={"help": "Probability of a pleural effusion (one side or both)."})
    p_cardiomegaly: float = field(default=0.25, metadata={"help": "Probability that the heart is enlarged."})
    p_ett: float = field(default=0.15, metadata={"help": "Probability of an endotracheal tube."})
    p_pacemaker: float = field(default=0.1, metadata={"help": "Probability of a left chest wall pacemaker."})
    ribs: bool = field(default=True, metadata={"help": "Draw faint ribs over the thorax."})
    mottle_std: float = field(
        default=4.0, metadata={"help": "Std of a smooth, low-frequency film mottle (grey levels); compresses well."}
    )
    noise_std: float = field(
        default=0.0, metadata={"help": "Std of per-pixel Gaussian noise (grey levels); makes PNGs ~5x bigger."}
    )
    thinking: bool = field(default=False, metadata={"help": "Append ' /think' to every question (thinking models)."})
    grpo_train_offset: int = field(
        default=0,
        metadata={
            "help": "Row of the train stream where the GRPO schema's train split starts (validation and test are "
            "shared). At train_size or more, GRPO's prompts are images the SFT split does not hold: the demo's SFT "
            "model has seen each of its images ~12 times, and on those GRPO's reward rose while held-out results did "
            "not move."
        },
    )
    varied_templates: bool = field(
        default=True,
        metadata={
            "help": "Draw questions and answers from all of RadVLM's templates; off uses the first of each, which "
            "a tiny model learns much faster (the CPU demo)."
        },
    )

    def split_sizes(self) -> dict[str, int]:
        return {"train": self.train_size, "validation": self.validation_size, "test": self.test_size}

    def probabilities(self) -> dict[str, float]:
        return {k: getattr(self, f"p_{k}") for k in FINDING_KINDS}


# ---------------------------------------------------------------------------------------------------------------------
# Geometry helpers (normalised coordinates: x to the right, y down, pixel centres at (i + 0.5) / size).


class _Grid:
    def __init__(self, size: int) -> None:
        c = (np.arange(size, dtype=np.float32) + 0.5) / size
        self.size = size
        self.x, self.y = np.meshgrid(c, c)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, power: int = 2) -> np.ndarray:
        dx, dy = ((self.x - cx) / rx) ** 2, ((self.y - cy) / ry) ** 2
        return (dx + dy if power == 2 else dx * dx + dy * dy) <= 1.0

    def polyline(self, points: list[tuple[float, float]], half_width: float) -> np.ndarray:
        """Pixels within ``half_width`` of a polyline (tubes, leads)."""
        mask = np.zeros_like(self.x, dtype=bool)
        for (x0, y0), (x1, y1) in zip(points[:-1], points[1:]):
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((self.x - x0) * dx + (self.y - y0) * dy) / max(dx * dx + dy * dy, 1e-12), 0.0, 1.0)
            mask |= (self.x - x0 - t * dx) ** 2 + (self.y - y0 - t * dy) ** 2 <= half_width**2
        return mask


@functools.cache
def _grid(size: int) -> _Grid:
    return _Grid(size)


def _mottle(rng: np.random.Generator, size: int, std: float) -> np.ndarray:
    """Smooth film mottle: coarse Gaussian noise upsampled bilinearly (no fine grain, so PNGs stay small and fast)."""
    coarse = rng.standard_normal((9, 9), dtype=np.float32) * std
    return np.asarray(Image.fromarray(coarse, mode="F").resize((size, size), Image.Resampling.BILINEAR))


def _zone_masks(lung: np.ndarray) -> dict[str, np.ndarray]:
    """Upper, mid and lower thirds of a lung's height."""
    rows = np.flatnonzero(lung.any(axis=1))
    edges = np.linspace(rows[0], rows[-1] + 1, 4).round().astype(int)
    zones = {}
    for i, zone in enumerate(ZONES):
        zones[zone] = np.zeros_like(lung)
        zones[zone][edges[i] : edges[i + 1]] = lung[edges[i] : edges[i + 1]]
    return zones


# ---------------------------------------------------------------------------------------------------------------------
# Scene sampling and drawing.


def _choose_kinds(rng: np.random.Generator, config: SyntheticConfig, require: str | None) -> set[str]:
    """Which findings the image has; ``require`` ("abnormality" or "finding") forces at least one of that sort."""
    probs = config.probabilities()
    kinds = {k for k in FINDING_KINDS if rng.random() < probs[k]}
    pool = [k for k in FINDING_KINDS if require == "finding" or k in _ABNORMALITY_KINDS]
    if require and not kinds & set(pool):
        weights = np.array([probs[k] for k in pool], dtype=float)
        if weights.sum() <= 0:
            raise ValueError(f"A row needs a {require} but every finding probability for it is 0.")
        kinds.add(pool[int(rng.choice(len(pool), p=weights / weights.sum()))])
    return kinds


def _place(rng: np.random.Generator, zone: np.ndarray, grid: _Grid) -> tuple[float, float]:
    """A point inside a lung zone: the zone's centroid plus jitter of up to a third of its extent."""
    ys, xs = np.nonzero(zone)
    cx, cy = (xs.mean() + 0.5) / grid.size, (ys.mean() + 0.5) / grid.size
    ex, ey = (xs.max() - xs.min()) / grid.size, (ys.max() - ys.min()) / grid.size
    for _ in range(8):
        px, py = cx + rng.uniform(-ex, ex) / 3, cy + rng.uniform(-ey, ey) / 3
        i, j = min(int(py * grid.size), grid.size - 1), min(int(px * grid.size), grid.size - 1)
        if zone[i, j]:
            return px, py
    return cx, cy


def _anatomy(rng: np.random.Generator, grid: _Grid, cardiomegaly: bool) -> dict[str, object]:
    """Jittered anatomy: masks of body, lungs, heart, mediastinum, trachea, plus the numbers findings need."""
    cx = 0.5 + rng.normal(0, 0.012)
    body = grid.ellipse(cx, 0.6, rng.uniform(0.41, 0.46), 0.63, power=4)
    top, base_r = rng.uniform(0.1, 0.15), rng.uniform(0.72, 0.8)
    bases = {"right": base_r, "left": base_r + rng.uniform(0.0, 0.04)}
    hrx = rng.uniform(0.16, 0.19) if cardiomegaly else rng.uniform(0.1, 0.125)
    hcx, hcy = cx + rng.uniform(0.03, 0.06), bases["left"] - rng.uniform(0.1, 0.13)
    heart = grid.ellipse(hcx, hcy, hrx, rng.uniform(0.09, 0.11) * (1.12 if cardiomegaly else 1.0)) & body
    mw = rng.uniform(0.045, 0.06)
    mediastinum = (np.abs(grid.x - cx) <= mw) & (grid.y <= hcy - 0.05) & body
    carina = top + rng.uniform(0.12, 0.17)
    trachea = (np.abs(grid.x - cx) <= rng.uniform(0.012, 0.017)) & (grid.y <= carina) & body
    lungs = {}
    for side, sign in (("right", -1.0), ("left", 1.0)):
        lateral, medial = cx + sign * rng.uniform(0.33, 0.38), cx + sign * rng.uniform(0.055, 0.07)
        bottom = bases[side] + 0.12
        ellipse = grid.ellipse(
            (lateral + medial) / 2, (top + bottom) / 2, abs(medial - lateral) / 2, (bottom - top) / 2
        )
        medial_frac = np.clip((grid.x - lateral) / (medial - lateral), 0.0, 1.0)
        dome = grid.y <= bases[side] - rng.uniform(0.05, 0.09) * np.sqrt(medial_frac)
        lungs[side] = ellipse & dome & body & ~heart & ~mediastinum
    zones = {side: _zone_masks(lung) for side, lung in lungs.items()}
    masks = {"body": body, "heart": heart, "mediastinum": mediastinum, "trachea": trachea, "lungs": lungs}
    return {**masks, "zones": zones, "cx": cx, "carina": carina, "heart_center": (hcx, hcy, hrx)}


def _regions(anatomy: dict, grid: _Grid) -> dict[str, Box]:
    """Anatomical regions (Chest ImaGenome names) as tight boxes of the drawn anatomy."""
    regions: dict[str, Box | None] = {}
    for side, lung in anatomy["lungs"].items():
        regions[f"{side} lung"] = mask_box(lung)
        for zone, mask in anatomy["zones"][side].items():
            regions[f"{side} {zone} lung zone"] = mask_box(mask)
        x1, y1, x2, y2 = mask_box(lung)
        lateral = grid.x <= x1 + 0.4 * (x2 - x1) if side == "right" else grid.x >= x2 - 0.4 * (x2 - x1)
        regions[f"{side} costophrenic angle"] = mask_box(lung & lateral & (grid.y >= y2 - 0.22 * (y2 - y1)))
    regions["cardiac silhouette"] = mask_box(anatomy["heart"])
    regions["upper mediastinum"] = mask_box(anatomy["mediastinum"])
    regions["trachea"] = mask_box(anatomy["trachea"])
    return {k: v for k, v in regions.items() if v is not None}


def _effusion(rng: np.random.Generator, anatomy: dict, grid: _Grid, sides: list[str]) -> Finding:
    """Fluid filling the lung base, higher laterally (meniscus), blunting the costophrenic angle."""
    size = "small" if rng.random() < 0.5 else "moderate"
    masks = []
    for side in sides:
        lung = anatomy["lungs"][side]
        x1, y1, x2, y2 = mask_box(lung)
        depth = (y2 - y1) * (rng.uniform(0.1, 0.15) if size == "small" else rng.uniform(0.22, 0.3))
        lateral_frac = (x2 - grid.x) / (x2 - x1) if side == "left" else (grid.x - x1) / (x2 - x1)
        fluid = lung & (grid.y >= y2 - depth - 0.06 * (1 - np.clip(lateral_frac * 2, 0, 1)))
        masks.append(fluid)
    phrase, sentence = finding_text("effusion", "bilateral" if len(sides) == 2 else sides[0], size=size)
    return Finding("effusion", "pleural effusion", phrase, sentence, masks, side=sides[0] if len(sides) == 1 else None)


def _lung_lesion(rng: np.random.Generator, kind: str, zone: np.ndarray, lung: np.ndarray, grid: _Grid) -> np.ndarray:
    """A consolidation (a few overlapping ellipses) or a round nodule, clipped to the lung."""
    px, py = _place(rng, zone, grid)
    if kind == "nodule":
        r = rng.uniform(0.03, 0.045)
        return grid.ellipse(px, py, r, r) & lung
    blob = np.zeros_like(lung)
    for _ in range(3):
        dx, dy = rng.uniform(-0.03, 0.03, size=2)
        blob |= grid.ellipse(px + dx, py + dy, rng.uniform(0.04, 0.075), rng.uniform(0.035, 0.06))
    return blob & lung


def _draw_ribs(image: np.ndarray, anatomy: dict, grid: _Grid, rng: np.random.Generator) -> None:
    start, spacing = rng.uniform(0.1, 0.14), rng.uniform(0.07, 0.08)
    d = np.abs(grid.x - anatomy["cx"]) / 0.4
    thorax = anatomy["body"] & (grid.y < 0.85) & (d > 0.12)
    phase = (grid.y - start + 0.06 * d - 0.12 * d**2) / spacing
    k = np.rint(phase)
    image[thorax & (k >= 0) & (k < 9) & (np.abs(phase - k) * spacing <= 0.011)] += _RIB


def _draw_anatomy(anatomy: dict, grid: _Grid, rng: np.random.Generator, ribs: bool) -> np.ndarray:
    image = np.full(grid.x.shape, _BACKGROUND, dtype=np.float32)
    image[anatomy["body"]] = _SOFT_TISSUE
    for lung in anatomy["lungs"].values():
        image[lung] = _LUNG + 12.0 * grid.y[lung]
    image[anatomy["mediastinum"] | anatomy["heart"]] = _MEDIASTINUM
    image[anatomy["trachea"]] = _TRACHEA
    if ribs:
        _draw_ribs(image, anatomy, grid, rng)
    return image


def _draw_lung_findings(
    image: np.ndarray, kinds: set[str], anatomy: dict, grid: _Grid, rng: np.random.Generator, max_nodules: int
) -> list[Finding]:
    """Effusion first; then consolidation and nodules, each in its own (side, zone), never under the fluid."""
    findings: list[Finding] = []
    free = [(s, z) for s in SIDES for z in ZONES]
    if "effusion" in kinds:
        sides = [SIDES[i] for i in ((0,), (1,), (0, 1))[int(rng.choice(3, p=[0.4, 0.4, 0.2]))]]
        finding = _effusion(rng, anatomy, grid, sides)
        for fluid in finding.masks:
            image[fluid] = _FLUID + 25.0 * (grid.y[fluid] - grid.y[fluid].min())
        findings.append(finding)
        free = [(s, z) for s, z in free if not (s in sides and z == "lower")]
    lesions = ["consolidation"] * ("consolidation" in kinds)
    lesions += ["nodule"] * (int(rng.integers(1, max(max_nodules, 1) + 1)) if "nodule" in kinds else 0)
    for kind in lesions[: len(free)]:
        side, zone = free.pop(int(rng.integers(len(free))))
        lung = anatomy["lungs"][side]
        mask = _lung_lesion(rng, kind, anatomy["zones"][side][zone], lung, grid)
        if kind == "nodule":
            image[mask] = _NODULE
        else:
            image[mask] = np.maximum(image[mask], _CONSOLIDATION + rng.normal(0, 6, size=int(mask.sum())))
        findings.append(Finding(kind, kind, *finding_text(kind, side, zone), [mask], side=side, zone=zone))
    return findings


def _draw_devices(
    image: np.ndarray, kinds: set[str], anatomy: dict, grid: _Grid, rng: np.random.Generator
) -> list[Finding]:
    """An endotracheal tube ending above the carina; a pacemaker over the left chest with its lead to the heart."""
    findings = []
    if "ett" in kinds:
        x = anatomy["cx"] + rng.uniform(-0.005, 0.005)
        tube = grid.polyline([(x, 0.0), (x, anatomy["carina"] - rng.uniform(0.03, 0.07))], 0.009) & anatomy["body"]
        image[tube] = _METAL
        findings.append(Finding("ett", None, *finding_text("ett"), [tube]))
    if "pacemaker" in kinds:
        gx, gy = anatomy["cx"] + rng.uniform(0.2, 0.28), rng.uniform(0.1, 0.16)
        generator = grid.ellipse(gx, gy, rng.uniform(0.035, 0.045), rng.uniform(0.025, 0.03), power=4)
        hcx, hcy, hrx = anatomy["heart_center"]
        start, bend, tip = (gx - 0.03, gy), (gx - 0.1, gy + 0.2), (hcx + 0.4 * hrx, hcy)
        lead = [start] + [_bezier(start, bend, tip, t) for t in np.linspace(0.1, 1.0, 8)]
        device = (generator | grid.polyline(lead, 0.007)) & anatomy["body"]
        image[device] = _METAL
        findings.append(Finding("pacemaker", None, *finding_text("pacemaker"), [device]))
    return findings


def make_scene(rng: np.random.Generator, config: SyntheticConfig, require: str | None = None) -> Scene:
    """Draw one image and return it with its findings and regions (``require``: see ``_choose_kinds``)."""
    grid = _grid(config.image_size)
    kinds = _choose_kinds(rng, config, require)
    anatomy = _anatomy(rng, grid, "cardiomegaly" in kinds)
    image = _draw_anatomy(anatomy, grid, rng, config.ribs)
    findings = _draw_lung_findings(image, kinds, anatomy, grid, rng, config.max_nodules)
    if "cardiomegaly" in kinds:
        findings.append(Finding("cardiomegaly", "cardiomegaly", *finding_text("cardiomegaly"), [anatomy["heart"]]))
    findings += _draw_devices(image, kinds, anatomy, grid, rng)
    image += _mottle(rng, config.image_size, config.mottle_std)
    if config.noise_std > 0:
        image += config.noise_std * rng.standard_normal(image.shape, dtype=np.float32)
    pixels = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return Scene(pixels, findings, _regions(anatomy, grid))


def _bezier(p0: tuple, p1: tuple, p2: tuple, t: float) -> tuple[float, float]:
    return tuple(float((1 - t) ** 2 * a + 2 * (1 - t) * t * b + t**2 * c) for a, b, c in zip(p0, p1, p2))


def to_pil(pixels: np.ndarray) -> Image.Image:
    """Grey content stored as RGB, as a real CXR JPEG loaded for a VLM is."""
    return Image.fromarray(pixels, mode="L").convert("RGB")


def row_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one row, independent of every other row."""
    return np.random.default_rng([seed, SPLITS.index(split), index])


# ---------------------------------------------------------------------------------------------------------------------
# Dataset building and CLI.


def build_examples(config: SyntheticConfig, first_train_row: int = 0) -> dict[str, list[dict]]:
    """Schema-neutral rows per split: id, task, question, answer, boxes and the PNG bytes of the image. The train
    split holds rows ``first_train_row`` to ``first_train_row + train_size - 1`` of the train stream."""
    unknown = set(config.tasks) - set(GRPO_TASKS)
    if unknown or not config.tasks:
        raise ValueError(f"Synthetic data covers the tasks {GRPO_TASKS}; got {config.tasks!r}.")
    if first_train_row < 0:
        raise ValueError(f"The first train row must be 0 or more; got {first_train_row}.")
    examples: dict[str, list[dict]] = {}
    for split, size in config.split_sizes().items():
        examples[split] = []
        start = first_train_row if split == "train" else 0
        for index in range(start, start + size):
            task = config.tasks[index % len(config.tasks)]
            rng = row_rng(config.seed, split, index)
            scene = make_scene(rng, config, require=REQUIRES.get(task))
            text_rng = random.Random(int(rng.integers(2**63)))
            question, answer, boxes = task_text(scene, task, text_rng, config.thinking, config.varied_templates)
            buffer = io.BytesIO()
            to_pil(scene.image).save(buffer, format="PNG", compress_level=1)
            image = {"bytes": buffer.getvalue(), "path": None}
            row = {"id": f"synthetic-{split}-{index:05d}", "task": task, "question": question, "answer": answer}
            examples[split].append({**row, "boxes": boxes, "image": image})
    return examples


def schema_examples(config: SyntheticConfig, schema: str, examples: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The rows of one schema: ``examples`` itself, except GRPO's train split when ``grpo_train_offset`` moves it."""
    if schema != "grpo" or not config.grpo_train_offset:
        return examples
    train_only = replace(config, validation_size=0, test_size=0)
    return {**examples, "train": build_examples(train_only, config.grpo_train_offset)["train"]}


def build_synthetic_dataset(config: SyntheticConfig, schema: str = "sft") -> DatasetDict:
    """A ``DatasetDict`` (train/validation/test) in the SFT or GRPO schema of ``radvlm_grpo.vocab.schema``."""
    return to_dataset_dict(schema_examples(config, schema, build_examples(config)), schema)


def _parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, SyntheticConfig]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="Where to save_to_disk (for --schema both: OUT_DIR/sft and OUT_DIR/grpo).")
    parser.add_argument("--schema", choices=("sft", "grpo", "both"), default="both")
    defaults = SyntheticConfig()
    for f in fields(SyntheticConfig):
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=f.metadata["help"])
        elif isinstance(default, tuple):
            parser.add_argument(flag, nargs="+", default=list(default), help=f.metadata["help"])
        else:
            parser.add_argument(flag, type=type(default), default=default, help=f.metadata["help"])
    args = parser.parse_args(argv)
    config = SyntheticConfig(**{f.name: getattr(args, f.name) for f in fields(SyntheticConfig)})
    config.tasks = tuple(config.tasks)
    return args, config


def main(argv: list[str] | None = None) -> None:
    args, config = _parse_args(argv)
    examples = build_examples(config)
    for schema in ("sft", "grpo") if args.schema == "both" else (args.schema,):
        path = f"{args.out_dir}/{schema}" if args.schema == "both" else args.out_dir
        dataset = to_dataset_dict(schema_examples(config, schema, examples), schema)
        dataset.save_to_disk(path)
        print(f"Saved {schema.upper()} data {dict(dataset.num_rows)} to {path}")


if __name__ == "__main__":
    run_cli(main)
