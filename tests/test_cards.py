import re
from unittest.mock import MagicMock

import pytest
from huggingface_hub import ModelCard

from radvlm_grpo.publishing.cards import CardInfo, render_model_card, write_model_card
from radvlm_grpo.publishing.hub import PUSH_IGNORE_PATTERNS, push_folder


def test_card_metadata_round_trip(tmp_path):
    local_data = tmp_path / "radvlm_sft"
    local_data.mkdir()
    info = CardInfo(
        model_id="me/RadVLM-test",
        stage="sft",
        base_model="Qwen/Qwen3-VL-8B-Instruct",
        datasets=[str(local_data), "me/cxr-grounding"],
        metrics={"train_loss": 0.123456},
        recipe_path="recipes/radvlm/sft.yaml",
        recipe_text="learning_rate: 1.0e-05\n",
        overrides=["--num_train_epochs", "2"],
    )
    card = ModelCard.load(write_model_card(tmp_path / "out", info))
    assert card.data.base_model == "Qwen/Qwen3-VL-8B-Instruct"
    assert card.data.datasets == ["me/cxr-grounding"]  # local paths are not Hub datasets
    assert card.data.pipeline_tag == "image-text-to-text"
    assert {"radvlm-grpo", "sft", "trl"} <= set(card.data.tags)
    assert "| train_loss | 0.1235 |" in card.text
    assert "learning_rate: 1.0e-05" in card.text and "--num_train_epochs 2" in card.text
    assert 'model_id = "me/RadVLM-test"' in card.text
    assert "not a medical device" in card.text
    assert "demo model" not in card.text


def test_card_rejects_unknown_stage():
    with pytest.raises(ValueError, match="Unknown stage"):
        render_model_card(CardInfo(model_id="x", stage="pretrain"))


def test_push_is_private_by_default_and_skips_checkpoints(tmp_path):
    write_model_card(tmp_path, CardInfo(model_id="me/m", stage="sft"))
    api = MagicMock()
    push_folder(tmp_path, "me/m", api=api)
    api.create_repo.assert_called_once_with("me/m", private=True, exist_ok=True, repo_type="model")
    kwargs = api.upload_folder.call_args.kwargs
    assert kwargs["repo_id"] == "me/m" and kwargs["ignore_patterns"] == PUSH_IGNORE_PATTERNS
    assert "checkpoint-*" in PUSH_IGNORE_PATTERNS
    api.create_branch.assert_not_called()

    push_folder(tmp_path, "me/m", private=False, revision="v1-sft", api=api)
    assert api.create_repo.call_args.kwargs["private"] is False
    api.create_branch.assert_called_once_with("me/m", branch="v1-sft", exist_ok=True)


def test_push_refuses_a_folder_without_card(tmp_path):
    with pytest.raises(FileNotFoundError, match="model card"):
        push_folder(tmp_path, "me/m", api=MagicMock())


def test_the_card_cites_each_paper_title_it_names():
    """The card names the MIDL paper and its arXiv preprint, whose titles differ (method.md): each title quoted in
    the text is the title of a citation entry, with the venue it belongs to."""
    text = render_model_card(CardInfo(model_id="me/m", stage="grpo")).text
    bibtex = text[text.index("```bibtex") :]
    entries = {m[1]: m[0] for m in re.findall(r"@(\w+)\{[^@]*?title\s*=\s*\{([^}]*)\}", bibtex)}
    quoted = set(re.findall(r'"([^"]*Reinforcement\s+Learning)"', text[: text.index("```bibtex")]))
    assert {" ".join(q.split()) for q in quoted} == set(entries) and len(entries) == 2
    midl = "RadVLM-GRPO: Enhancing Chest X-ray Report Generation and Visual Grounding via Reinforcement Learning"
    arxiv = "Enhancing Radiology Report Generation and Visual Grounding using Reinforcement Learning"
    assert entries == {midl: "inproceedings", arxiv: "misc"}
    assert "eprint        = {2512.10691}" in bibtex and "pages     = {1935--1968}" in bibtex
