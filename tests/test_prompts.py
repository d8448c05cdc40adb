"""RadVLM's templates: the counts and wording the authors' code has, and answers whose boxes parse back."""

from __future__ import annotations

import random
import re

import pytest

from radvlm_grpo.vocab import prompts
from radvlm_grpo.vocab.schema import ABNORMALITY_GROUNDING, ANATOMICAL_GROUNDING, PHRASE_GROUNDING, REPORT_GENERATION

BOX_RE = re.compile(r"\[([-\d.]+), ([-\d.]+), ([-\d.]+), ([-\d.]+)\]")


def parse_boxes(text: str) -> list[list[float]]:
    return [[float(v) for v in m] for m in BOX_RE.findall(text)]


def test_template_counts_match_radvlm():
    assert len(prompts.REPORT_QUESTIONS) == 15
    assert len(prompts.LOCATION_QUESTIONS) == 20
    assert len(prompts.LOCATION_ANSWERS) == 20
    assert len(prompts.PHRASE_QUESTIONS) == 8
    assert len(prompts.PHRASE_ANSWERS) == 8
    for templates in (prompts.LOCATION_QUESTIONS, prompts.PHRASE_QUESTIONS, prompts.PHRASE_ANSWERS):
        assert len(set(templates)) == len(templates)
        assert all(t.count("{}") == 1 for t in templates)
    assert all("{label}" in t and "{boxes}" in t for t in prompts.LOCATION_ANSWERS)


def test_spec_examples_are_in_the_lists():
    assert "Provide a radiology report for this Chest X-Ray." in prompts.REPORT_QUESTIONS
    assert "Outline a radiology report for this X-ray." in prompts.REPORT_QUESTIONS
    assert "Where is the {} located in this Chest X-ray?" in prompts.LOCATION_QUESTIONS
    assert "The {label} is located at the coordinates {boxes} on the image." in prompts.LOCATION_ANSWERS
    assert "Find the region corresponding to: {}" in prompts.PHRASE_QUESTIONS
    assert "The bounding box for this observation is {}." in prompts.PHRASE_ANSWERS
    assert prompts.QWEN3VL_BASELINE_REPORT_PROMPT.startswith(
        "Please write a radiology report for this Chext X-ray.\n\n"
    )


def test_report_question_and_think_suffix():
    rng = random.Random(0)
    seen = {prompts.report_question(rng) for _ in range(400)}
    assert seen == set(prompts.REPORT_QUESTIONS)
    thinking = prompts.report_question(random.Random(1), thinking=True)
    assert thinking.endswith(" /think")
    assert thinking[: -len(" /think")] == prompts.report_question(random.Random(1))


def test_same_rng_seed_same_question():
    a = [prompts.grounding_question(ANATOMICAL_GROUNDING, "trachea", random.Random(s)) for s in range(20)]
    b = [prompts.grounding_question(ANATOMICAL_GROUNDING, "trachea", random.Random(s)) for s in range(20)]
    assert a == b
    assert len(set(a)) > 5


@pytest.mark.parametrize("task", [ANATOMICAL_GROUNDING, ABNORMALITY_GROUNDING])
def test_location_question_and_answer(task):
    rng = random.Random(3)
    boxes = [[0.1, 0.2, 0.35, 0.5], [0.6, 0.25, 0.9, 0.55]]
    for _ in range(50):
        question = prompts.grounding_question(task, "pleural effusion", rng)
        answer = prompts.grounding_answer(task, "pleural effusion", boxes, rng)
        assert "pleural effusion" in question and "pleural effusion" in answer
        assert question.replace("pleural effusion", "{}") in prompts.LOCATION_QUESTIONS
        assert parse_boxes(answer) == boxes
        assert "[0.1, 0.2, 0.35, 0.5] and [0.6, 0.25, 0.9, 0.55]" in answer


def test_phrase_question_and_answer():
    rng = random.Random(4)
    phrase = "nodule in the left upper lung"
    for _ in range(30):
        question = prompts.grounding_question(PHRASE_GROUNDING, phrase, rng)
        answer = prompts.grounding_answer(PHRASE_GROUNDING, phrase, [[0.5, 0.25, 0.62, 0.4]], rng)
        assert question.replace(phrase, "{}") in prompts.PHRASE_QUESTIONS
        assert phrase not in answer
        assert parse_boxes(answer) == [[0.5, 0.25, 0.62, 0.4]]


def test_labels_are_lowercased_like_radvlm_but_not_acronyms():
    question = prompts.grounding_question(ABNORMALITY_GROUNDING, "Cardiomegaly", random.Random(0))
    assert "cardiomegaly" in question and "Cardiomegaly" not in question
    assert prompts.normalize_label("ILD") == "ILD"
    assert prompts.normalize_label("Small left pleural effusion") == "small left pleural effusion"


def test_boxes_are_rounded_to_two_decimals():
    answer = prompts.grounding_answer(
        ANATOMICAL_GROUNDING, "right lung", [[0.123, 0.5, 0.456789, 0.999]], random.Random(0)
    )
    assert "[0.12, 0.5, 0.46, 1.0]" in answer


def test_unknown_task_and_empty_boxes_fail():
    with pytest.raises(ValueError):
        prompts.grounding_question(REPORT_GENERATION, "x", random.Random(0))
    with pytest.raises(ValueError):
        prompts.grounding_answer(PHRASE_GROUNDING, "x", [], random.Random(0))
