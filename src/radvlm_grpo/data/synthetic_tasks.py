"""The rows of the synthetic data: a findings paragraph in a fixed order, the question/answer of each task, and
the SFT/GRPO schemas they are cast to.

Kept apart from the drawing code (``synthetic.py``) so that the small report vocabulary is in one place: a tiny model
can only learn a report whose sentences always come in the same order with the same words.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from datasets import Dataset, DatasetDict

from radvlm_grpo.vocab.boxes import Box
from radvlm_grpo.vocab.prompts import FirstTemplate, grounding_answer, grounding_question, report_question
from radvlm_grpo.vocab.schema import (
    ABNORMALITY_GROUNDING,
    ANATOMICAL_GROUNDING,
    GRPO_FEATURES,
    PHRASE_GROUNDING,
    REPORT_GENERATION,
    SFT_FEATURES,
    assistant_turn,
    user_turn,
)

if TYPE_CHECKING:
    from radvlm_grpo.data.synthetic_scene import Finding, Scene

SIDES = ("right", "left")
ZONES = ("upper", "mid", "lower")
# Sentence order of the findings paragraph: devices, lungs, pleura, heart (as a radiologist reads the film).
REPORT_ORDER = ("ett", "pacemaker", "consolidation", "nodule", "effusion", "cardiomegaly")
LUNGS_CLEAR = "The lungs are clear."
NO_EFFUSION = "No pleural effusion or pneumothorax."
NO_PNEUMOTHORAX = "No pneumothorax."
NORMAL_HEART = "The cardiomediastinal silhouette is normal."
NORMAL_REPORT = f"{LUNGS_CLEAR} {NO_EFFUSION} {NORMAL_HEART}"

SIZES = ("small", "moderate")
# Abnormality-grounding names (VinDr-CXR-like labels); devices appear in reports and phrase grounding only.
ABNORMALITY_LABELS = ("consolidation", "nodule", "pleural effusion", "cardiomegaly")
# Anatomical regions, named as in Chest ImaGenome.
REGIONS = (
    *(
        f"{side} {part}"
        for side in SIDES
        for part in ("lung", *(f"{z} lung zone" for z in ZONES), "costophrenic angle")
    ),
    "cardiac silhouette",
    "upper mediastinum",
    "trachea",
)
_FIXED_TEXT = {
    "cardiomegaly": ("enlarged cardiac silhouette", "The heart is enlarged."),
    "ett": ("endotracheal tube", "An endotracheal tube is in place."),
    "pacemaker": ("left chest wall pacemaker", "A left chest wall pacemaker is present."),
}

# What a row of each grounding task needs in its image (see synthetic.make_scene's ``require``).
REQUIRES = {ABNORMALITY_GROUNDING: "abnormality", PHRASE_GROUNDING: "finding"}


def finding_text(
    kind: str, side: str | None = None, zone: str | None = None, size: str | None = None
) -> tuple[str, str]:
    """``(phrase, sentence)`` of a finding: the phrase is what phrase grounding asks for, the sentence goes in the
    report. ``side`` is "right", "left" or, for effusions on both sides, "bilateral"."""
    if kind in ("consolidation", "nodule"):
        article = "a " if kind == "nodule" else ""
        return f"{kind} in the {side} {zone} lung", f"There is {article}{kind} in the {side} {zone} lung."
    if kind == "effusion" and side == "bilateral":
        return f"{size} bilateral pleural effusions", f"There are {size} bilateral pleural effusions."
    if kind == "effusion":
        return f"{size} {side} pleural effusion", f"There is a {size} {side} pleural effusion."
    return _FIXED_TEXT[kind]


def vocabulary() -> list[str]:
    """Every phrase, sentence, label and region name the synthetic data can contain (for a tiny tokenizer)."""
    texts = [LUNGS_CLEAR, NO_EFFUSION, NO_PNEUMOTHORAX, NORMAL_HEART, *ABNORMALITY_LABELS, *REGIONS]
    for kind in ("consolidation", "nodule"):
        texts += [t for side in SIDES for zone in ZONES for t in finding_text(kind, side, zone)]
    texts += [t for size in SIZES for side in (*SIDES, "bilateral") for t in finding_text("effusion", side, size=size)]
    return texts + [t for pair in _FIXED_TEXT.values() for t in pair]


def _order(finding: Finding) -> tuple[int, int, int]:
    side = SIDES.index(finding.side) if finding.side else 0
    zone = ZONES.index(finding.zone) if finding.zone else 0
    return REPORT_ORDER.index(finding.kind), side, zone


def write_report(findings: list[Finding]) -> str:
    """The findings paragraph: one sentence per finding in a fixed order, normal sentences for what is absent."""
    kinds = {f.kind for f in findings}
    ordered = sorted(findings, key=_order)
    sentences = [f.sentence for f in ordered if f.kind in ("ett", "pacemaker")]
    lesions = [f.sentence for f in ordered if f.kind in ("consolidation", "nodule")]
    sentences += lesions or [LUNGS_CLEAR]
    effusions = [f.sentence for f in ordered if f.kind == "effusion"]
    sentences += [*effusions, NO_PNEUMOTHORAX] if effusions else [NO_EFFUSION]
    sentences += (
        [f.sentence for f in ordered if f.kind == "cardiomegaly"] if "cardiomegaly" in kinds else [NORMAL_HEART]
    )
    return " ".join(sentences)


def _sorted_boxes(boxes: list[Box]) -> list[Box]:
    """Left to right, then top to bottom: one consistent order for the model to learn."""
    return sorted(boxes, key=lambda b: (b[0], b[1]))


def task_text(
    scene: Scene, task: str, rng: random.Random, thinking: bool = False, varied_templates: bool = True
) -> tuple[str, str, list[Box]]:
    """Question, answer and ground-truth boxes of one row of ``task`` on ``scene``."""
    template_rng = rng if varied_templates else FirstTemplate()
    if task == REPORT_GENERATION:
        return report_question(template_rng, thinking), write_report(scene.findings), []
    if task == ANATOMICAL_GROUNDING:
        subject = rng.choice(sorted(scene.regions))
        boxes = [scene.regions[subject]]
    elif task == ABNORMALITY_GROUNDING:
        labels = sorted({f.label for f in scene.findings if f.label})
        if not labels:
            raise ValueError("Abnormality grounding needs an image with an abnormality.")
        subject = rng.choice(labels)
        boxes = _sorted_boxes([b for f in scene.findings if f.label == subject for b in f.boxes])
    elif task == PHRASE_GROUNDING:
        if not scene.findings:
            raise ValueError("Phrase grounding needs an image with a finding.")
        finding = rng.choice(sorted(scene.findings, key=_order))
        subject, boxes = finding.phrase, _sorted_boxes(finding.boxes)
    else:
        raise ValueError(f"Synthetic data has no task {task!r}.")
    question = grounding_question(task, subject, template_rng, thinking)
    return question, grounding_answer(task, subject, boxes, template_rng), boxes


def to_dataset_dict(examples: dict[str, list[dict]], schema: str) -> DatasetDict:
    """Cast neutral rows (``synthetic.build_examples``) to the SFT (``messages``/``images``) or GRPO
    (``prompt``/``image``/``solution``/``boxes``) schema; splits without rows are left out."""
    if schema == "sft":
        features = SFT_FEATURES

        def convert(e: dict) -> dict:
            messages = [user_turn(e["question"]), assistant_turn(e["answer"])]
            return {"messages": messages, "images": [e["image"]], "task": e["task"], "id": e["id"]}
    elif schema == "grpo":
        features = GRPO_FEATURES

        def convert(e: dict) -> dict:
            prompt, solution, boxes = [user_turn(e["question"])], e["answer"], e["boxes"]
            return {
                "prompt": prompt,
                "image": e["image"],
                "solution": solution,
                "boxes": boxes,
                "task": e["task"],
                "id": e["id"],
            }
    else:
        raise ValueError(f"Unknown schema {schema!r}; expected 'sft' or 'grpo'.")
    # Empty splits are left out: datasets 5.2 saves a split with no rows but cannot load it back.
    splits = {split: [convert(e) for e in rows] for split, rows in examples.items() if rows}
    return DatasetDict({split: Dataset.from_list(rows, features=features) for split, rows in splits.items()})
