"""RadVLM's instruction templates: the questions the model is asked and the answer sentences that carry boxes.

The template strings are facts taken from the authors' code (``RadVLM/radvlm/data/create_instructions.py`` of
uzh-dqbm-cmi/RadVLM-GRPO: ``generate_instruction_report_generation`` (15 questions),
``generate_instruction_location`` (20 questions, 20 answers; anatomical region and abnormality grounding) and
``generate_instruction_phrase_location`` (8 questions, 8 answers)), kept verbatim, including their double space in
"The {}'s  location". The general Qwen3-VL baseline report prompt (typo "Chext" included) and the " /think" suffix come
from the spec (method.md 3.1 and 1.3). Training data and evaluation must draw from the same lists, so every stage
imports them from here.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from radvlm_grpo.vocab.boxes import Box, format_boxes
from radvlm_grpo.vocab.schema import ABNORMALITY_GROUNDING, ANATOMICAL_GROUNDING, PHRASE_GROUNDING

THINK_SUFFIX = " /think"

REPORT_QUESTIONS: tuple[str, ...] = (
    "Provide a radiology report for this Chest X-Ray.",
    "Analyze the Chest X-Ray and report your findings.",
    "Please give a detailed radiology report from this Chest X-Ray image.",
    "Please offer a detailed analysis based on this image.",
    "Analyze this image and provide a report.",
    "Write a radiology report for this Chest X-ray.",
    "Draft a concise report for this image.",
    "Please provide a brief radiology report.",
    "Compose a radiology report focusing on key findings.",
    "Create a structured radiology report for this X-ray.",
    "Produce a summary radiology report for this chest image.",
    "Provide a radiology report for this exam.",
    "Write a report summarizing this Chest X-ray.",
    "Draft a simple radiology report for these findings.",
    "Outline a radiology report for this X-ray.",
)

# The stock Qwen3-VL baseline gets this prompt instead of a RadVLM question (typo "Chext" as in the authors' code).
QWEN3VL_BASELINE_REPORT_PROMPT = (
    "Please write a radiology report for this Chext X-ray.\n\n"
    "It should be one unstructured paragraph of findings only: concise, natural clinical language, objective, "
    "declarative sentences describing visible features only, suitable for a radiology findings report using standard "
    "radiology phrasing."
)

# Anatomical region and abnormality grounding: "{}" is the region or abnormality name.
LOCATION_QUESTIONS: tuple[str, ...] = (
    "Where is the {} located in this Chest X-ray?",
    "Can you point out the {}'s position on the image?",
    "What's the location of the {} in the X-ray?",
    "Identify where the {} is on this Chest X-ray, please.",
    "Where exactly is the {} found on this image?",
    "Could you specify where to find the {} on this X-ray?",
    "Highlight the {}'s area on the image.",
    "Show me the {}'s location on this CXR.",
    "Where should I look to find the {} in this image?",
    "Can you locate the {} on this X-ray for me?",
    "Please point to the {} on this Chest X-ray.",
    "Indicate the position of the {} on this image.",
    "Describe the location of the {} on the X-ray.",
    "Where on this image is the {} located?",
    "Point out the exact location of the {} in the Chest X-ray.",
    "How can I identify the {} on this image?",
    "Where is the {} situated in this CXR?",
    "Can you highlight the {} on this image?",
    "Indicate where the {} is found on this X-ray.",
    "Describe where to find the {} on this Chest X-ray.",
)

# "{label}" is the region or abnormality name, "{boxes}" the formatted boxes.
LOCATION_ANSWERS: tuple[str, ...] = (
    "The {label} is located at the coordinates {boxes} on the image.",
    "You'll find the {label} at {boxes} in the X-ray.",
    "The {label} can be seen at {boxes} on the Chest X-ray.",
    "The location of the {label} is at {boxes} on the image.",
    "For the {label}, the coordinates are {boxes} on the X-ray.",
    "The {label} is situated at {boxes} in the image.",
    "On the Chest X-ray, the {label} is located at {boxes}.",
    "The {label} appears at the coordinates {boxes} on the image.",
    "In the X-ray, the {label} is identifiable at {boxes}.",
    "The location for the {label} is marked at {boxes} on the Chest X-ray.",
    "The {label} is positioned at {boxes} on the image.",
    "The area occupied by the {label} is at {boxes} in the X-ray.",
    "On the image, you can find the {label} at {boxes}.",
    "The {label}'s  location is at {boxes} on the Chest X-ray.",
    "In terms of coordinates, the {label} is found at {boxes} on the image.",
    "Regarding the {label}, it is located at {boxes} on the X-ray.",
    "The {label} specifically is at {boxes} on the Chest X-ray.",
    "Concerning the {label}, you will find it at {boxes} in the image.",
    "The {label} is at {boxes} on the X-ray.",
    "For identifying the {label}, look at {boxes} on the Chest X-ray.",
)

# Phrase grounding: "{}" is the phrase in the question and the formatted boxes in the answer.
PHRASE_QUESTIONS: tuple[str, ...] = (
    "Please locate the following sentence: {}",
    "Identify the position of the following phrase in the CXR: {}",
    "Please show me the location of: {}",
    "Highlight the area of the following observation on the image: {}",
    "Where on the image can you see the following observation: {}",
    "Find the region corresponding to: {}",
    "Please indicate where this finding is located: {}",
    "Mark the area where you observe: {}",
)

PHRASE_ANSWERS: tuple[str, ...] = (
    "This sentence is located at the coordinates {} on the image.",
    "You'll find it at {} in the CXR.",
    "This phrase can be observed at {} on the image.",
    "The bounding box for this observation is {}.",
    "Its location is given by {}.",
    "It is displayed at {} in the radiograph.",
    "The area specified is at coordinates {}.",
    "This finding is located at {} in the image.",
)

_LOCATION_TASKS = (ANATOMICAL_GROUNDING, ABNORMALITY_GROUNDING)


def add_think_suffix(question: str, thinking: bool = True) -> str:
    """RadVLM-Thinking is triggered by a trailing " /think" on the user instruction."""
    return question + THINK_SUFFIX if thinking else question


def normalize_label(label: str) -> str:
    """RadVLM lowercases a Capitalised label ("Cardiomegaly") but keeps acronyms ("ILD") as they are."""
    if label and label[0].isupper() and not label.isupper():
        return label.lower()
    return label


class FirstTemplate:
    """Stands in for the ``random.Random`` of the question builders: always the first template (data built with one
    template per task, and inference, which asks the question such a model was trained on)."""

    @staticmethod
    def choice(options):
        return options[0]


def report_question(rng: random.Random, thinking: bool = False) -> str:
    """One of the 15 report-generation questions, drawn with ``rng``."""
    return add_think_suffix(rng.choice(REPORT_QUESTIONS), thinking)


def _check_task(task: str) -> None:
    if task not in (*_LOCATION_TASKS, PHRASE_GROUNDING):
        raise ValueError(
            f"No grounding templates for task {task!r}; expected one of {(*_LOCATION_TASKS, PHRASE_GROUNDING)}."
        )


def grounding_question(task: str, subject: str, rng: random.Random, thinking: bool = False) -> str:
    """The question of a grounding task; ``subject`` is the region/abnormality name or, for phrase grounding, the phrase."""
    _check_task(task)
    templates = PHRASE_QUESTIONS if task == PHRASE_GROUNDING else LOCATION_QUESTIONS
    return add_think_suffix(rng.choice(templates).format(normalize_label(subject)), thinking)


def grounding_answer(task: str, subject: str, boxes: Sequence[Box], rng: random.Random) -> str:
    """The answer of a grounding task, boxes written with :func:`radvlm_grpo.vocab.boxes.format_boxes`.

    Phrase-grounding answers do not repeat the phrase; ``subject`` is used only by the location templates.
    """
    _check_task(task)
    boxes_text = format_boxes(boxes)
    if task == PHRASE_GROUNDING:
        return rng.choice(PHRASE_ANSWERS).format(boxes_text)
    return rng.choice(LOCATION_ANSWERS).format(label=normalize_label(subject), boxes=boxes_text)
