"""Batched generation on the tiny model, resuming after a crash, and retries."""

import json

import pytest
from datasets import load_from_disk
from transformers import AutoModelForImageTextToText, AutoProcessor

from radvlm_grpo.models.generation import (
    GenerationRequest,
    GenerationResult,
    SamplingSettings,
    TransformersGenerator,
    generate_all,
)


@pytest.fixture(scope="module")
def generator(tiny_model_dir):
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    return TransformersGenerator(model, AutoProcessor.from_pretrained(tiny_model_dir))


@pytest.fixture(scope="module")
def requests(synthetic_dir):
    rows = load_from_disk(synthetic_dir / "grpo")["test"].select(range(5))
    return [GenerationRequest(row["id"], row["prompt"], [row["image"]]) for row in rows]


class Counting:
    """Wraps a generator and records the ids it was asked for."""

    def __init__(self, inner):
        self.inner, self.asked = inner, []

    def generate(self, requests, settings):
        self.asked += [r.id for r in requests]
        return self.inner.generate(requests, settings)


def test_generates_every_row_in_order(generator, requests, tmp_path):
    settings = SamplingSettings(max_new_tokens=6)
    results = generate_all(generator, requests, settings, tmp_path / "out.jsonl", batch_size=2)
    assert list(results) == [r.id for r in requests]
    for result in results.values():
        assert 0 < result.num_tokens <= 6 and isinstance(result.text, str)
        assert result.truncated == (result.num_tokens == 6)
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r.id for r in requests]


def test_resumes_without_redoing_finished_rows(generator, requests, tmp_path):
    path = tmp_path / "out.jsonl"
    settings = SamplingSettings(max_new_tokens=4)
    generate_all(generator, requests[:3], settings, path, batch_size=2)
    with path.open("a") as handle:  # a crash mid-write leaves a partial line
        handle.write('{"id": "cut-off')
    counting = Counting(generator)
    results = generate_all(counting, requests, settings, path, batch_size=2)
    assert counting.asked == [r.id for r in requests[3:]]
    assert list(results) == [r.id for r in requests]
    # The cut-off line stays on its own line: a third run finds every row and generates nothing.
    again = Counting(generator)
    generate_all(again, requests, settings, path, batch_size=2)
    assert again.asked == []


def test_retries_until_the_answer_is_acceptable(tmp_path):
    class Scripted:
        """Answers without </think> twice, then with it; records the seed of each call."""

        def __init__(self):
            self.seeds = []

        def generate(self, requests, settings):
            self.seeds.append(settings.seed)
            text = "<think>x</think> done" if len(self.seeds) >= 3 else "<think>still thinking"
            return [GenerationResult(r.id, text, 5, truncated=False) for r in requests]

    scripted = Scripted()
    request = GenerationRequest("a", [{"role": "user", "content": "q"}], [])
    results = generate_all(
        scripted,
        [request],
        SamplingSettings(temperature=1.0, seed=7),
        tmp_path / "o.jsonl",
        retry=lambda r: "</think>" not in r.text,
        max_attempts=4,
    )
    assert results["a"].text.endswith("done") and results["a"].attempts == 3
    assert scripted.seeds == [7, 9, 10]  # every attempt samples with a new seed
