"""The reward registry: TRL's calling convention, task routing, thinking, penalties, logging, and fuzzing."""

import math
import pickle
import random
import time

import numpy as np
import pytest

from radvlm_grpo.metrics.grounding_ap import coco_ap, evaluate_grounding, grounding_map
from radvlm_grpo.metrics.soft_f1 import soft_f1_batch
from radvlm_grpo.rewards import (
    REWARD_REGISTRY,
    completion_text,
    get_reward_funcs,
    register_reward,
)
from radvlm_grpo.vocab.schema import ABNORMALITY_GROUNDING, PHRASE_GROUNDING, REPORT_GENERATION

FIG1_IOU = 0.0407 / 0.0683  # 0.596, see test_boxes.py
FIG1_ANSWER = "Cardiomegaly at [0.35, 0.51, 0.75, 0.64]"
FIG1_TRUTH = [[0.38, 0.47, 0.76, 0.62]]
REPORT = "The heart size is normal. No focal consolidation, pleural effusion or pneumothorax."
ALL_NAMES = ["soft_f1", "iou", "gleu", "bleu", "rouge_l"]


def conv(text):
    """TRL's conversational completion."""
    return [{"role": "assistant", "content": text}]


def test_registry_names_and_trl_names():
    funcs = get_reward_funcs(ALL_NAMES)
    assert [f.__name__ for f in funcs] == ALL_NAMES
    for f in funcs:
        clone = pickle.loads(pickle.dumps(f))  # TRL's reward forms must pickle (multi-process launchers)
        assert clone.__name__ == f.__name__
    assert set(REWARD_REGISTRY) >= set(ALL_NAMES)


@pytest.mark.parametrize("name", ["radcliq", "bertscore", "radgraph_f1"])
def test_clinical_rewards_are_registered(name):
    assert name in REWARD_REGISTRY


def test_unknown_names_and_options():
    with pytest.raises(ValueError, match="Unknown reward 'sof_f1'"):
        get_reward_funcs(["sof_f1"])
    with pytest.raises(ValueError, match="Unknown reward option"):
        get_reward_funcs(["soft_f1"], box_scael=1000)
    with pytest.raises(ValueError):
        get_reward_funcs(["soft_f1"], soft_f1_variant="figure")
    with pytest.raises(ValueError):
        get_reward_funcs(["soft_f1"], box_scale=0)
    with pytest.raises(ValueError):
        get_reward_funcs(["gleu"], report_occurrence="middle")
    # None means "the default" (a recipe field left unset).
    assert get_reward_funcs("soft_f1", box_scale=None, thinking=None)[0].box_scale == 1.0


def test_dotted_import_path():
    (func,) = get_reward_funcs(["radvlm_grpo.rewards.completion_text"])
    assert func is completion_text
    with pytest.raises(ValueError, match="Could not import"):
        get_reward_funcs(["radvlm_grpo.rewards.no_such_reward"])


def test_register_reward():
    def factory(thinking=False):
        return lambda completions, **kwargs: [1.0] * len(completions)

    register_reward("constant_for_test", factory)
    try:
        (func,) = get_reward_funcs(["constant_for_test"], thinking=True)
        assert func(["a", "b"]) == [1.0, 1.0]
        with pytest.raises(ValueError):
            register_reward("constant_for_test", factory)
    finally:
        REWARD_REGISTRY.pop("constant_for_test")


def test_completion_text_forms():
    assert completion_text("plain") == "plain"
    assert completion_text(conv("hi")) == "hi"
    assert (
        completion_text(
            [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
        )
        == "ab"
    )
    assert completion_text({"content": "x"}) == "x"
    for odd in (None, 3, [], [None], [{"role": "assistant"}], [{"content": 5}], {"content": [1, {"text": None}]}):
        assert completion_text(odd) == ""


def test_soft_f1_reward_fig1_both_forms_and_grid():
    (paper,) = get_reward_funcs(["soft_f1"])
    (dev,) = get_reward_funcs(["soft_f1"], soft_f1_variant="dev")
    (grid,) = get_reward_funcs(["soft_f1"], box_scale=1000)
    completions = [conv(FIG1_ANSWER), conv("Cardiomegaly at [0.84, 0.34, 0.91, 0.50]")]
    boxes = [FIG1_TRUTH, FIG1_TRUTH]
    assert paper(completions, boxes=boxes) == pytest.approx([FIG1_IOU, 0.0])
    assert dev(completions, boxes=boxes) == pytest.approx([2 * FIG1_IOU / (1 + FIG1_IOU), 0.0])
    # Qwen3-VL's grid: the completion in 0-1000, the `boxes` column in [0, 1] (the schema's convention).
    assert grid(["Cardiomegaly at [350, 510, 750, 640]"], boxes=[FIG1_TRUTH]) == pytest.approx([FIG1_IOU])


def test_iou_reward():
    (iou,) = get_reward_funcs(["iou"])
    a = [0.1, 0.1, 0.3, 0.3]
    # One box vs one: the IoU. A duplicate: matched IoU 1 over max(2, 1) = 0.5.
    assert iou([FIG1_ANSWER, f"{a} {a}"], boxes=[FIG1_TRUTH, [a]]) == pytest.approx([FIG1_IOU, 0.5])


def test_truth_from_solution_when_boxes_are_missing():
    (soft_f1,) = get_reward_funcs(["soft_f1"], box_scale=1000)
    # `boxes` empty: the truth is parsed from the answer text, at the recipe's scale.
    rewards = soft_f1(
        ["[350, 510, 750, 640]"] * 3, boxes=[[], None, []], solution=["at [380, 470, 760, 620]", "x", None]
    )
    assert rewards[0] == pytest.approx(FIG1_IOU)
    assert rewards[1] == 0.0  # a text without boxes: an empty truth set scores 0
    assert rewards[2] == 0.0  # `boxes` given but empty and no solution: empty truth
    assert soft_f1(["[0, 0, 1, 1]"]) == [None]  # no ground-truth column at all: ungradeable


def test_bad_ground_truth_is_a_data_error():
    (soft_f1,) = get_reward_funcs(["soft_f1"])
    with pytest.raises(ValueError, match="row-7"):
        soft_f1(["[0, 0, 1, 1]", "x"], boxes=[FIG1_TRUTH, [[0.1, 0.2, 0.3]]], id=["row-1", "row-7"])


def test_task_routing():
    soft_f1, gleu = get_reward_funcs(["soft_f1", "gleu"])
    completions = [conv(FIG1_ANSWER), conv(REPORT), conv(FIG1_ANSWER)]
    columns = {
        "boxes": [FIG1_TRUTH, [], FIG1_TRUTH],
        "solution": ["Cardiomegaly at [0.38, 0.47, 0.76, 0.62]", REPORT, "x"],
        "task": [ABNORMALITY_GROUNDING, REPORT_GENERATION, "classification"],
    }
    assert soft_f1(completions, **columns) == pytest.approx([FIG1_IOU, None, None])
    assert gleu(completions, **columns) == pytest.approx([None, 1.0, None])
    # Without a task column every row is scored.
    assert gleu([REPORT], solution=[REPORT]) == [1.0]


def test_thinking_grounding_uses_first_close_tag():
    (soft_f1,) = get_reward_funcs(["soft_f1"], thinking=True)
    completions = [
        "<think>maybe [0.0, 0.0, 1.0, 1.0]?</think> " + FIG1_ANSWER,  # the box inside the thoughts is not counted
        "<think>no end " + FIG1_ANSWER,  # missing </think>: penalty 0
        "<think>x</think>   ",  # empty answer: penalty 0
        "<think>a</think> [0.35, 0.51, 0.75, 0.64] <think>b</think> [0, 0, 1, 1]",  # first </think>: two boxes
    ]
    rewards = soft_f1(completions, boxes=[FIG1_TRUTH] * 4)
    # Last row: boxes [Fig. 1 pred, whole image] vs Fig. 1 truth. IoU(whole image, truth) = 0.057, so Hungarian keeps
    # the 0.596 pair: 2 * 0.596 / 3.
    assert rewards == pytest.approx([FIG1_IOU, 0.0, 0.0, 2 * FIG1_IOU / 3])


def test_thinking_report_uses_last_close_tag():
    (gleu,) = get_reward_funcs(["gleu"], thinking=True)
    completions = [f"<think>a</think> junk <think>b</think> {REPORT}", f"no tag {REPORT}"]
    assert gleu(completions, solution=[REPORT, REPORT]) == [1.0, 0.0]
    (first,) = get_reward_funcs(["gleu"], thinking=True, report_occurrence="first")
    assert first(completions[:1], solution=[REPORT])[0] < 1.0


def test_log_metric_sub_scores():
    logged = {}
    (soft_f1,) = get_reward_funcs(["soft_f1"], thinking=True)
    completions = [
        "<think>t</think> " + FIG1_ANSWER,
        "no tag",
        "<think>t</think> [0.5, 0.5, 0.1, 0.9] [0.35, 0.51, 0.75, 0.64]",
    ]
    soft_f1(
        completions,
        boxes=[FIG1_TRUTH] * 3,
        task=[ABNORMALITY_GROUNDING, ABNORMALITY_GROUNDING, PHRASE_GROUNDING],
        log_metric=logged.__setitem__,
    )
    assert logged["soft_f1/missing_think_frac"] == pytest.approx(1 / 3)
    assert logged["soft_f1/no_box_frac"] == pytest.approx(1 / 3)
    assert logged["soft_f1/invalid_box_frac"] == pytest.approx(1 / 3)  # 1 of the 3 predicted boxes is invalid
    assert logged["soft_f1/pred_boxes_mean"] == pytest.approx(1.5)
    assert logged["soft_f1/matched_iou_mean"] == pytest.approx(FIG1_IOU)
    assert logged["soft_f1/abnormality_grounding"] == pytest.approx(FIG1_IOU / 2)
    assert logged["soft_f1/phrase_grounding"] == pytest.approx(2 * FIG1_IOU / 3)
    assert all(math.isfinite(v) for v in logged.values())
    gleu_logged = {}
    get_reward_funcs(["gleu"])[0]([REPORT], solution=[REPORT], log_metric=gleu_logged.__setitem__)
    assert gleu_logged == {"gleu/answer_chars_mean": len(REPORT)}


def _adversarial_texts(rng: random.Random) -> list:
    pieces = [
        "[", "]", "[[", "]]", ",", " ", "0.5", "-1", "1e999", "nan", "inf", "</think>", "<think>", "\n", "é", "🫁",
        "\x00", "[0.1, 0.2, 0.3, 0.4]", "[350, 510, 750, 640]", "[1,2,3]", "[.5, .5, 1., 1.]", "{", "}", '"bbox_2d":',
        "the heart", "\u202e", "\ud7ff", "1" * 50,
    ]  # fmt: skip
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))) for _ in range(2500)]
    alphabet = [chr(c) for c in range(32, 127)] + ["ü", "—", "\t", "\u0000", "\U0001f600"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 200))) for _ in range(1000)]
    texts += [
        "[" * 200_000 + "]" * 200_000,  # deeply nested
        "[0.1, 0.1, 0.2, 0.2] " * 40_000,  # ~840 kB of boxes
        "x" * 1_000_000,  # a megabyte of text
        "</think>" * 10_000,
        "<think>" + "a " * 100_000,  # never closed
        "",
    ]
    forms = [lambda t: t, conv, lambda t: [{"role": "assistant", "content": [{"type": "text", "text": t}]}]]
    completions = [rng.choice(forms)(t) for t in texts]
    completions += [None, 3.5, {}, [], [{}], [{"content": None}], {"content": ["x"]}, b"[0, 0, 1, 1]"]
    return completions


def test_fuzz_every_reward_and_metric():
    rng = random.Random(0)
    completions = _adversarial_texts(rng)
    n = len(completions)
    columns = {
        "boxes": [FIG1_TRUTH if i % 3 else [[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.9, 0.9]] for i in range(n)],
        "solution": [REPORT if i % 2 else "at [0.1, 0.1, 0.2, 0.2]" for i in range(n)],
        "task": [rng.choice([ABNORMALITY_GROUNDING, REPORT_GENERATION, PHRASE_GROUNDING]) for _ in range(n)],
        "id": [f"row-{i}" for i in range(n)],
    }
    start = time.perf_counter()
    for thinking in (False, True):
        for func in get_reward_funcs(ALL_NAMES, thinking=thinking, box_scale=1000 if thinking else 1):
            logged = {}
            rewards = func(completions, log_metric=logged.__setitem__, **columns)
            assert len(rewards) == n
            assert all(r is None or (math.isfinite(r) and 0.0 <= r <= 1.0) for r in rewards), func.__name__
            assert all(math.isfinite(v) for v in logged.values())
    texts = [completion_text(c) for c in completions]
    refs = [np.array(FIG1_TRUTH)] * n
    report = evaluate_grounding(texts, refs, columns["task"], thinking=True)
    assert all(math.isfinite(v) for task in report.values() for v in task.values())
    from radvlm_grpo.vocab.boxes import parse_boxes_batch

    preds = parse_boxes_batch(texts)
    assert np.isfinite(soft_f1_batch(preds, refs)).all()
    assert all(math.isfinite(v) for v in coco_ap(preds, refs).values())
    result = grounding_map(preds, refs)
    assert math.isfinite(result["map_50"]) and math.isfinite(result["avg_iou"])
    assert time.perf_counter() - start < 15.0


def test_an_exact_answer_scores_exactly_one_against_a_float32_boxes_column():
    """The GRPO `boxes` column as datasets stores it (float32): the written boxes are what the answer is matched to."""
    import datasets

    from radvlm_grpo.vocab.schema import GRPO_FEATURES

    truth = [[0.35, 0.51, 0.75, 0.64], [0.1, 0.2, 0.3, 0.45]]
    column = datasets.Dataset.from_dict(
        {"boxes": [truth, truth[:1]]}, features=datasets.Features({"boxes": GRPO_FEATURES["boxes"]})
    )["boxes"]
    (soft_f1,) = get_reward_funcs(["soft_f1"])
    answers = ["[0.35, 0.51, 0.75, 0.64] and [0.1, 0.2, 0.3, 0.45]", "[0.35, 0.51, 0.75, 0.64]"]
    assert soft_f1(answers, boxes=list(column), task=[PHRASE_GROUNDING] * 2) == [1.0, 1.0]
