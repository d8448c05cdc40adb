"""Answer extraction after </think> and the penalty constants of method.md 2.1-2.4."""

import pytest

from radvlm_grpo.metrics import thinking
from radvlm_grpo.metrics.thinking import extract_answer, has_think_close, is_too_short

TWO_BLOCKS = "<think>first thoughts</think> draft [0.1, 0.1, 0.2, 0.2] <think>more</think>  final answer  "


def test_last_and_first_occurrence():
    # Reports and evaluation: after the last </think>; grounding reward: after the first.
    assert extract_answer(TWO_BLOCKS, thinking=True, occurrence="last") == "final answer"
    assert extract_answer(TWO_BLOCKS, thinking=True, occurrence="first") == (
        "draft [0.1, 0.1, 0.2, 0.2] <think>more</think>  final answer"
    )


def test_missing_close_tag_is_none():
    assert extract_answer("<think>never closed", thinking=True) is None
    assert extract_answer("plain answer", thinking=True, occurrence="first") is None
    assert extract_answer("<think>x</think>", thinking=True) == ""  # present but empty: "" (penalised by the caller)


def test_non_thinking_scores_the_whole_text():
    assert extract_answer("  <think>x</think> answer ", thinking=False) == "<think>x</think> answer"


@pytest.mark.parametrize("value", [None, 3, ["a"], {"content": "x"}])
def test_non_string_never_raises(value):
    assert extract_answer(value, thinking=False) == ""
    assert extract_answer(value, thinking=True) is None
    assert not has_think_close(value)


def test_bad_occurrence_is_a_configuration_error():
    with pytest.raises(ValueError):
        extract_answer("a</think>b", thinking=True, occurrence="middle")


def test_penalty_constants_and_length_rule():
    assert thinking.RADCLIQ_PENALTY == -3.0
    assert thinking.GROUNDING_PENALTY == 0.0
    assert thinking.ABLATION_PENALTY == 0.0
    assert thinking.REWARD_MAX_CHARS == 2048
    assert thinking.EVAL_MAX_CHARS == 4000
    # `len(text) <= 5` is penalised: 5 characters are too short, 6 are not.
    assert is_too_short("12345") and not is_too_short("123456")
    assert is_too_short("") and is_too_short(None)
    assert has_think_close("a</think>b")
