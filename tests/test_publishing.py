"""Cards with evaluation results and Hub publishing, without the Hub: metadata round trips, privacy defaults and
refusals, the exact files and repo settings a push sends (a mocked ``HfApi``), and no token anywhere."""

import io
import logging
from unittest.mock import MagicMock

import pytest
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from huggingface_hub import DatasetCard, ModelCard
from huggingface_hub.errors import EntryNotFoundError
from PIL import Image as PILImage

from radvlm_grpo.evaluation.card import EvaluationSummary, apply_evaluation, push_evaluation
from radvlm_grpo.publishing.cards import (
    EVALUATION_END,
    EVALUATION_START,
    CardInfo,
    render_model_card,
    write_model_card,
)
from radvlm_grpo.publishing.hub import (
    CredentialedDataError,
    credentialed_sources,
    files_to_push,
    push_dataset,
    push_folder,
)

SECRET = "hf_SECRETtokenThatMustNeverLeak1234"


def summary(value: float = 0.2994, dataset: str = "me/radvlm-test") -> EvaluationSummary:
    return EvaluationSummary(
        label="RadVLM-test",
        size="8.77",
        dataset=dataset,
        split="test",
        n=3314,
        intervals={
            "report_generation": {
                "rouge_l": {"value": value, "low": 0.28, "high": 0.31, "n": 3314},
                "radcliq_v1": {"value": 0.86491, "low": 0.85, "high": 0.88, "n": 3314},
            },
            "phrase_grounding/mscxr": {"map_50": {"value": 0.879, "low": 0.85, "high": 0.9, "n": 189}},
        },
        report_metrics={"rouge_l": value, "radcliq_v1": 0.86491},
        map_by_benchmark={"phrase_grounding/mscxr": 0.879},
        not_computed={"green": "no --green_model given"},
        figures={"report_lengths": "figures/report_lengths.png"},
        command="python scripts/evaluate.py --model_name_or_path me/RadVLM-test",
    )


def metric_values(card: ModelCard) -> dict:
    return {(r.dataset_config, r.metric_type): r.metric_value for r in card.data.eval_results}


# --- cards ----------------------------------------------------------------------------------------------------------


def test_evaluation_round_trips_through_the_card_metadata(tmp_path):
    info = CardInfo(model_id="me/RadVLM-test", stage="grpo", base_model="Qwen/Qwen3-VL-8B-Instruct")
    path = write_model_card(tmp_path, info)
    apply_evaluation(ModelCard.load(path), summary()).save(path)
    card = ModelCard.load(path)
    assert card.data.model_name == "RadVLM-test"
    assert metric_values(card) == {
        ("report_generation", "rouge_l"): 29.94,  # % as in the tables
        ("report_generation", "radcliq_v1"): 0.8649,  # raw, lower is better
        ("phrase_grounding/mscxr", "map_50"): 87.9,
    }
    result = card.data.eval_results[0]
    assert (result.task_type, result.dataset_type, result.dataset_split) == (
        "image-text-to-text",
        "me/radvlm-test",
        "test",
    )
    assert result.metric_name == "ROUGE-L" and result.task_name == "Radiology report generation"
    assert "| **RadVLM-test** | 8.77 | 29.9 |" in card.text and "| MedGemma-pt |" in card.text
    assert "![Report lengths](figures/report_lengths.png)" in card.text
    assert "Not computed: green (no --green_model given)." in card.text
    assert "not a medical device" in card.text and "grounding" in card.text.lower()


def test_applying_a_new_evaluation_replaces_the_old_one_and_keeps_others(tmp_path):
    card = render_model_card(CardInfo(model_id="me/RadVLM-test", stage="sft"))
    assert "Not evaluated yet" in card.text
    card = apply_evaluation(card, summary(0.25))
    card = apply_evaluation(card, summary(0.30))
    card = apply_evaluation(card, summary(0.10, dataset="me/other-test"))
    card.save(tmp_path / "README.md")
    loaded = ModelCard.load(tmp_path / "README.md")
    values = [(r.dataset_type, r.metric_type, r.metric_value) for r in loaded.data.eval_results]
    assert ("me/radvlm-test", "rouge_l", 30.0) in values and ("me/other-test", "rouge_l", 10.0) in values
    assert len(values) == 6  # two datasets x three metrics, no duplicates
    assert loaded.text.count(EVALUATION_START) == 1 and "Not evaluated yet" not in loaded.text


def test_a_card_without_an_evaluation_section_gets_one_before_intended_use():
    card = ModelCard("---\nlicense: mit\n---\n# m\n\nSome text.\n\n## Intended use\n\nResearch.\n")
    text = apply_evaluation(card, summary()).text
    assert text.index("## Evaluation") < text.index(EVALUATION_END) < text.index("## Intended use")
    assert card.data.license == "mit"


def test_model_index_names_a_local_test_set_honestly(tmp_path):
    from radvlm_grpo.evaluation.card import eval_results

    plain = tmp_path / "synthetic" / "grpo"
    plain.mkdir(parents=True)
    results = eval_results(summary(dataset=str(plain)))
    # A folder name is no Hub dataset id: the type says "local", the name says which folder.
    assert {(r.dataset_type, r.dataset_name) for r in results} == {("local", "synthetic/grpo (local folder), test")}
    from radvlm_grpo.evaluation.card import dataset_identity

    assert dataset_identity("me/radvlm-test") == ("me/radvlm-test", "radvlm-test")
    converted = tmp_path / "openi"
    (converted / "grpo").mkdir(parents=True)
    DatasetCard("---\npretty_name: openi\n---\n# openi\n").save(converted / "README.md")
    assert dataset_identity(str(converted / "grpo")) == ("local", "openi (local folder)")


def test_evaluation_only_card_says_training_is_not_recorded():
    card = render_model_card(CardInfo(model_id="someone/model", stage=None))
    assert "training recipe was not recorded" in card.text and "trained from scratch" not in card.text


# --- datasets -------------------------------------------------------------------------------------------------------


def tiny_dataset() -> DatasetDict:
    features = Features(
        {
            "image": Image(),
            "solution": Value("string"),
            "boxes": List(List(Value("float32"), length=4)),
            "task": Value("string"),
        }
    )
    buffer = io.BytesIO()
    PILImage.new("RGB", (8, 8)).save(buffer, format="PNG")
    row = {
        "image": {"bytes": buffer.getvalue(), "path": None},
        "solution": "No effusion.",
        "boxes": [],
        "task": "report_generation",
    }
    return DatasetDict(
        {"train": Dataset.from_list([row] * 3, features=features), "test": Dataset.from_list([row], features=features)}
    )


def recording_api(tmp_path):
    """A mocked HfApi whose create_commit keeps a copy of every file it is sent."""
    api = MagicMock()
    api.sent = {}

    def create_commit(repo_id, operations, **kwargs):
        for op in operations:
            source = op.path_or_fileobj
            api.sent[op.path_in_repo] = source if isinstance(source, bytes) else open(source, "rb").read()
        return f"https://huggingface.co/{repo_id}/commit/abc"

    api.create_commit.side_effect = create_commit
    return api


def test_credentialed_sources_are_recognised():
    assert set(credentialed_sources(["MIMIC-CXR-JPG", "mscxr", "synthetic", "PadChest_GR"])) == {
        "MIMIC-CXR-JPG",
        "mscxr",
        "PadChest_GR",
    }
    assert credentialed_sources(["synthetic", "nih-chestxray14"]) == {}
    assert list(credentialed_sources([])) == ["undeclared sources"]
    assert "chexpert" not in credentialed_sources(["chexpertise"])  # prefixes match whole name parts only


def test_credentialed_dataset_is_private_and_gated_by_default(tmp_path):
    api = recording_api(tmp_path)
    push_dataset(tiny_dataset(), "me/cxr", sources=["mimic-cxr"], api=api)
    api.create_repo.assert_called_once_with("me/cxr", repo_type="dataset", private=True, exist_ok=True)
    api.update_repo_settings.assert_called_once_with("me/cxr", gated="manual", repo_type="dataset")
    assert sorted(api.sent) == [
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
    ]
    assert api.create_commit.call_args.kwargs["repo_type"] == "dataset"
    card = DatasetCard(api.sent["README.md"].decode())
    assert card.data.license == "other" and "extra_gated_prompt" in card.data.to_dict()
    assert card.data.configs[0]["data_files"][0] == {"split": "train", "path": "data/train-*.parquet"}
    (tmp_path / "train.parquet").write_bytes(api.sent["data/train-00000-of-00001.parquet"])
    reloaded = Dataset.from_parquet(str(tmp_path / "train.parquet"))
    assert len(reloaded) == 3 and reloaded.features["image"] == Image()


@pytest.mark.parametrize("sources", [["mimic-cxr"], ["chexpert-plus", "synthetic"], []])
def test_public_credentialed_dataset_is_refused(tmp_path, sources):
    api = recording_api(tmp_path)
    with pytest.raises(CredentialedDataError, match="allow_public_credentialed"):
        push_dataset(tiny_dataset(), "me/cxr", sources=sources, private=False, api=api)
    assert api.method_calls == []  # nothing reached the Hub


def test_public_push_needs_the_explicit_flag_or_public_sources(tmp_path):
    api = recording_api(tmp_path)
    push_dataset(
        tiny_dataset(), "me/cxr", sources=["mimic-cxr"], private=False, allow_public_credentialed=True, api=api
    )
    assert api.create_repo.call_args.kwargs["private"] is False
    api.update_repo_settings.assert_called_once_with("me/cxr", gated="manual", repo_type="dataset")  # still gated

    api = recording_api(tmp_path)
    push_dataset(tiny_dataset(), "me/synthetic-cxr", sources=["synthetic"], private=False, api=api)
    assert api.create_repo.call_args.kwargs["private"] is False
    api.update_repo_settings.assert_not_called()
    assert DatasetCard(api.sent["README.md"].decode()).data.license == "apache-2.0"


# --- models and evaluation results ------------------------------------------------------------------------------------


def test_exact_files_of_a_checkpoint_push(tmp_path):
    for name in [
        "README.md",
        "config.json",
        "model.safetensors",
        "processor_config.json",
        "checkpoint-10/model.safetensors",
        "optimizer.pt",
        "runs/events.out",
        "completions/completions_00010.parquet",
        ".git/config",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert files_to_push(tmp_path) == ["README.md", "config.json", "model.safetensors", "processor_config.json"]
    api = MagicMock()
    push_folder(tmp_path, "me/m", api=api)
    api.create_repo.assert_called_once_with("me/m", private=True, exist_ok=True, repo_type="model")


def test_push_evaluation_merges_into_the_hub_card(tmp_path):
    remote = write_model_card(tmp_path / "remote", CardInfo(model_id="me/RadVLM-test", stage="grpo"))
    figure = tmp_path / "report_lengths.png"
    figure.write_bytes(b"png")
    api = recording_api(tmp_path)
    api.hf_hub_download.return_value = str(remote)
    pushed = summary()
    pushed.figures = {"report_lengths": "evaluation/report_lengths.png"}
    push_evaluation("me/RadVLM-test", pushed, {"evaluation/report_lengths.png": figure}, revision="v1", api=api)
    api.hf_hub_download.assert_called_once_with(repo_id="me/RadVLM-test", filename="README.md", revision="v1")
    assert sorted(api.sent) == ["README.md", "evaluation/report_lengths.png"]
    kwargs = api.create_commit.call_args.kwargs
    assert kwargs["repo_type"] == "model" and kwargs["revision"] == "v1"
    api.create_repo.assert_not_called()  # results go into an existing repo, never a new public one
    card = ModelCard(api.sent["README.md"].decode())
    assert "grpo" in card.data.tags  # the training card is kept
    assert metric_values(card)[("report_generation", "rouge_l")] == 29.94
    assert "![Report lengths](evaluation/report_lengths.png)" in card.text


def test_push_evaluation_to_a_repo_without_card(tmp_path):
    api = recording_api(tmp_path)
    api.hf_hub_download.side_effect = EntryNotFoundError("no README.md")
    push_evaluation("someone/model", summary(), {}, api=api)
    card = ModelCard(api.sent["README.md"].decode())
    assert card.data.eval_results and "training recipe was not recorded" in card.text


def test_the_token_never_reaches_cards_files_or_logs(tmp_path, monkeypatch, caplog, capsys):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    caplog.set_level(logging.DEBUG)
    folder = tmp_path / "model"
    info = CardInfo(model_id="me/m", stage="sft", recipe_text="learning_rate: 1.0e-05\n")
    card_path = write_model_card(folder, info)
    apply_evaluation(ModelCard.load(card_path), summary()).save(card_path)
    api = recording_api(tmp_path)
    push_folder(folder, "me/m", api=api)
    push_dataset(tiny_dataset(), "me/d", sources=["mimic-cxr"], api=api)
    api.hf_hub_download.return_value = str(card_path)
    push_evaluation("me/m", summary(), {"evaluation/card.md": card_path}, api=api)
    captured = capsys.readouterr()
    texts = [card_path.read_text(), caplog.text, captured.out, captured.err, repr(api.mock_calls)]
    texts += [content.decode(errors="ignore") for content in api.sent.values()]
    assert caplog.text  # the pushes did log what they sent
    assert all(SECRET not in text for text in texts)
