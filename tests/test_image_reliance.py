"""The image-reliance check: answer loss with the row's own image against another row's image."""

import subprocess
import sys

import pytest
import torch
from datasets import load_from_disk
from transformers import AutoModelForImageTextToText, AutoProcessor

from radvlm_grpo.evaluation.image_reliance import answer_losses, image_reliance
from radvlm_grpo.vocab.schema import assistant_turn


@pytest.fixture(scope="module")
def model_and_rows(tiny_model_dir, synthetic_dir):
    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir).eval()
    processor = AutoProcessor.from_pretrained(tiny_model_dir)
    rows = list(load_from_disk(str(synthetic_dir / "grpo"))["test"].select(range(8)))
    return model, processor, rows


def test_answer_losses_are_the_mean_log_likelihood_of_the_answer_tokens_only(model_and_rows):
    model, processor, rows = model_and_rows
    row = rows[0]
    full = processor.apply_chat_template([*row["prompt"], assistant_turn(row["solution"])], tokenize=False)
    prompt = processor.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[full], images=[row["image"]], return_tensors="pt")
    n_prompt = len(processor(text=[prompt], images=[row["image"]])["input_ids"][0])
    with torch.no_grad():
        logprobs = model(**inputs).logits[0].log_softmax(-1)
    ids = inputs["input_ids"][0]
    by_hand = -torch.stack([logprobs[t - 1, ids[t]] for t in range(n_prompt, len(ids))]).mean()
    own, other = answer_losses(model, processor, row["prompt"], row["solution"], [row["image"], rows[1]["image"]])
    assert own == pytest.approx(float(by_hand), rel=1e-5)
    assert other != pytest.approx(own, rel=1e-6)  # the second image is scored with it, not with the first


def test_a_blind_model_relies_on_nothing_and_a_seeing_one_on_its_image(model_and_rows):
    model, processor, rows = model_and_rows
    seeing = image_reliance(model, processor, rows)
    assert {r.task for r in seeing} == {row["task"] for row in rows}
    assert any(abs(r.difference.delta) > 1e-4 for r in seeing)  # random vision features still move the answer
    blind = AutoModelForImageTextToText.from_pretrained(model.name_or_path).eval()
    with torch.no_grad():  # every image becomes the same zero features
        for merger in (blind.model.visual.merger, *blind.model.visual.deepstack_merger_list):
            merger.linear_fc2.weight.zero_()
            merger.linear_fc2.bias.zero_()
    for reliance in image_reliance(blind, processor, rows):
        assert reliance.difference.a == pytest.approx(reliance.difference.b, abs=1e-6)
        assert reliance.difference.delta == pytest.approx(0.0, abs=1e-6)


def test_cli_names_a_missing_split(tiny_model_dir, synthetic_dir):
    command = [sys.executable, "-m", "radvlm_grpo.evaluation.image_reliance", str(tiny_model_dir),
               str(synthetic_dir / "grpo"), "--split", "nope"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "has no split 'nope'" in result.stderr


def test_cli_names_a_missing_model_folder(tmp_path, synthetic_dir):
    command = [sys.executable, "-m", "radvlm_grpo.evaluation.image_reliance", str(tmp_path / "no-such-model"),
               str(synthetic_dir / "grpo")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "radvlm_grpo.models.tiny" in result.stderr
