"""CheXbert on transformers 5 against upstream f1chexbert 0.0.2 (transformers 4.57.6) on seeded random weights.

The goldens come from ``scripts/goldens/make_clinical_goldens.py``: the same fixture checkpoint run by the upstream
package, one report per forward, over the shared corpus (published reports, empty and whitespace-only strings, reports
longer than 512 word pieces, odd unicode).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from radvlm_grpo.scorers.chexbert import (
    CONDITIONS,
    CONDITIONS_5,
    CONDITIONS_5_INDEX,
    CheXbert,
    chexbert_f1,
    classification_labels,
    cosine_rows,
    rrg_labels,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scorers"


@pytest.fixture(scope="module")
def goldens():
    return json.loads((FIXTURES / "goldens_clinical.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pairs():
    return {p["id"]: p for p in json.loads((FIXTURES / "corpus.json").read_text(encoding="utf-8"))["pairs"]}


@pytest.fixture(scope="module")
def chexbert():
    return CheXbert(weights_dir=FIXTURES, device="cpu", batch_size=16)


def test_conditions_match_f1chexbert():
    assert len(CONDITIONS) == 14 and CONDITIONS[-1] == "No Finding"
    assert [CONDITIONS[i] for i in CONDITIONS_5_INDEX] == sorted(CONDITIONS_5, key=CONDITIONS.index)
    assert CONDITIONS_5_INDEX == (1, 4, 5, 7, 9)


def test_tokens_embeddings_and_labels_match_upstream(chexbert, goldens):
    reports, gold = goldens["reports"], goldens["chexbert"]
    assert chexbert.tokenize(reports) == gold["input_ids"]
    assert max(len(ids) for ids in gold["input_ids"]) == 512  # the corpus exercises truncation
    out = chexbert.encode(reports)
    np.testing.assert_allclose(out.embeddings, np.array(gold["embeddings"]), atol=1e-5, rtol=0)
    assert out.classes.tolist() == gold["classes"]
    assert out.labels.tolist() == gold["labels_rrg"]
    assert 0.2 < np.mean(gold["labels_rrg"]) < 0.8, "random heads should give varied labels"


def test_f1_matches_sklearn_classification_report(chexbert, goldens, pairs):
    for name, gold in goldens["chexbert"]["f1"].items():
        hyps = [pairs[i]["hyp"] for i in gold["ids"]]
        refs = [pairs[i]["ref"] for i in gold["ids"]]
        ours = chexbert.f1(hyps, refs)
        for key, value in gold.items():
            if key.startswith("chexbert_"):
                assert ours[key] == pytest.approx(value, abs=1e-12), (name, key)


def test_batches_run_each_distinct_report_once(chexbert):
    chexbert.forward_calls = 0
    reports = ["No acute process.", "Mild cardiomegaly.", "No acute process."] * 10
    out = chexbert.encode(reports)
    assert chexbert.forward_calls == 1  # two distinct reports, one padded batch
    np.testing.assert_array_equal(out.embeddings[0], out.embeddings[2])
    alone = chexbert.encode(["Mild cardiomegaly."]).embeddings[0]
    np.testing.assert_allclose(out.embeddings[1], alone, atol=1e-5)  # padding does not change a report's output


def test_label_modes_and_f1_edge_cases():
    classes = np.array([[0, 1, 2, 3]])
    assert rrg_labels(classes).tolist() == [[0, 1, 0, 1]]
    mapped = classification_labels(classes)[0]
    assert np.isnan(mapped[0]) and mapped[1:].tolist() == [1.0, 0.0, -1.0]
    zeros = np.zeros((3, 14), dtype=int)
    scores = chexbert_f1(zeros, zeros)  # nothing positive anywhere: scikit-learn's zero_division gives 0
    assert scores["chexbert_micro_f1_14"] == 0.0 and scores["chexbert_macro_f1_14"] == 0.0
    assert scores["chexbert_accuracy_5"] == 1.0
    ones = np.ones((2, 14), dtype=int)
    assert chexbert_f1(ones, ones)["chexbert_macro_f1_5"] == 1.0
    with pytest.raises(ValueError):
        chexbert_f1(np.zeros((2, 13)), np.zeros((2, 13)))


def test_cosine_is_zero_for_a_zero_vector():
    a = np.array([[1.0, 0.0], [0.0, 0.0]])
    b = np.array([[2.0, 0.0], [1.0, 1.0]])
    assert cosine_rows(a, b).tolist() == [1.0, 0.0]


def test_missing_weights_name_the_file_and_the_hub_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("RADVLM_SCORER_WEIGHTS_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match=r"chexbert\.pth.*StanfordAIMI/RRG_scorers"):
        CheXbert(weights_dir=tmp_path, device="cpu")


def test_checkpoint_without_the_heads_is_refused(tmp_path):
    state = torch.load(FIXTURES / "chexbert" / "chexbert.pth", weights_only=True)["model_state_dict"]
    folder = tmp_path / "chexbert"
    folder.mkdir()
    for name in ("config.json", "vocab.txt", "tokenizer_config.json"):
        (folder / name).write_bytes((FIXTURES / "chexbert" / name).read_bytes())
    torch.save(
        {"model_state_dict": {k: v for k, v in state.items() if "linear_heads" not in k}}, folder / "chexbert.pth"
    )
    with pytest.raises(ValueError, match="linear_heads"):
        CheXbert(weights_dir=tmp_path, device="cpu")


def test_special_token_strings_in_text_match_f1chexbert(chexbert):
    """`[MASK]`, `[SEP]`, `<mask>`... written inside a report are tokenized as f1chexbert's slow tokenizer did."""
    gold = json.loads((FIXTURES / "goldens_special_tokens.json").read_text(encoding="utf-8"))
    assert chexbert.tokenize(gold["texts"]) == gold["chexbert"]["input_ids"]
