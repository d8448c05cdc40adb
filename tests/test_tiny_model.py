"""The tiny Qwen3-VL reloads with the Auto classes and behaves like the real one where the recipes depend on it."""

import json

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl.chat_template_utils import qwen3_vl_chat_template

from radvlm_grpo.models.tiny import QWEN_ADDED_TOKENS, QWEN_SPECIAL_TOKENS, TinyModelConfig, build_tiny_model, main


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    return AutoModelForImageTextToText.from_pretrained(tiny_model_dir), AutoProcessor.from_pretrained(tiny_model_dir)


def test_reloads_as_qwen3_vl(loaded):
    model, processor = loaded
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert len(processor.tokenizer) == model.config.text_config.vocab_size
    assert model.get_input_embeddings().weight.shape[0] == len(processor.tokenizer)


def test_special_tokens_are_single_ids(loaded):
    model, processor = loaded
    tokenizer = processor.tokenizer
    for token in QWEN_SPECIAL_TOKENS + QWEN_ADDED_TOKENS:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    assert model.config.image_token_id == tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert model.config.vision_start_token_id == tokenizer.convert_tokens_to_ids("<|vision_start|>")
    # <think> is a normal added token, as in Qwen3: it survives decoding with skip_special_tokens.
    ids = tokenizer.encode("<think> lungs </think> clear", add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True).startswith("<think>")


def test_chat_template_is_trls_qwen3_vl(tiny_model_dir, loaded):
    # TRL swaps in its training template (needed for assistant_only_loss) only on an exact match.
    _, processor = loaded
    assert processor.chat_template == qwen3_vl_chat_template
    assert (tiny_model_dir / "chat_template.jinja").read_text() == qwen3_vl_chat_template


@pytest.mark.parametrize("width,height", [(128, 128), (64, 64), (128, 96), (300, 200)])
def test_image_token_count_matches_grid(loaded, width, height):
    model, processor = loaded
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    batch = processor(text=[text], images=[Image.new("RGB", (width, height))], return_tensors="pt")
    t, h, w = batch["image_grid_thw"][0].tolist()
    n_image_tokens = int((batch["input_ids"] == model.config.image_token_id).sum())
    assert n_image_tokens == t * h * w // processor.image_processor.merge_size**2
    assert h * w * 16 * 16 <= processor.image_processor.size["longest_edge"]  # the pixel cap holds
    with torch.no_grad():
        out = model(**batch)
    assert torch.isfinite(out.logits).all()


def test_generate_runs(loaded):
    model, processor = loaded
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Report."}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True)
    batch = processor(text=[text], images=[Image.new("RGB", (128, 128), "gray")], return_tensors="pt")
    output = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert output.shape[1] <= batch["input_ids"].shape[1] + 5


def test_deterministic_by_seed(tmp_path, tiny_model_dir):
    again = build_tiny_model(tmp_path / "again")
    other = build_tiny_model(tmp_path / "other", TinyModelConfig(seed=1))
    reference = load_file(tiny_model_dir / "model.safetensors")
    same, different = load_file(again / "model.safetensors"), load_file(other / "model.safetensors")
    assert all(torch.equal(reference[k], same[k]) for k in reference)
    assert not all(torch.equal(reference[k], different[k]) for k in reference)
    assert (again / "tokenizer.json").read_text() == (tiny_model_dir / "tokenizer.json").read_text()


def test_cli_and_config_validation(tmp_path):
    main([str(tmp_path / "cli"), "--hidden_size", "32", "--intermediate_size", "64"])
    config = json.loads((tmp_path / "cli" / "tiny_config.json").read_text())
    assert config["hidden_size"] == 32
    assert json.loads((tmp_path / "cli" / "config.json").read_text())["text_config"]["hidden_size"] == 32
    with pytest.raises(ValueError, match="head_dim"):
        TinyModelConfig(head_dim=15).validate()
    with pytest.raises(ValueError, match="multiple of 32"):
        TinyModelConfig(image_size=100).validate()


def test_tokenizer_corpus_does_not_depend_on_the_install_location(monkeypatch):
    from radvlm_grpo.models.tiny import _tokenizer_corpus
    from radvlm_grpo.vocab import prompts

    before = _tokenizer_corpus(0)
    monkeypatch.setattr(prompts, "__file__", "/somewhere/else/prompts.py")
    assert _tokenizer_corpus(0) == before
    assert not any("prompts.py" in text for text in before)
