"""BERTScore on transformers 5 against bert-score 0.3.13 on transformers 4.57.6 (seeded random weights).

Both of the project's configurations are checked: distilroberta-base layer 5 (RadCliQ; RoBERTa's prefix space is
where bert-score drifts on transformers 5) and distilbert-base-uncased layer 5 (the paper's metric), raw and
baseline-rescaled, idf off, on every corpus pair scored one pair per call as the authors' reward did.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from radvlm_grpo.scorers.bertscore import (
    DEFAULT_LAYERS,
    EVAL_MODEL,
    RADCLIQ_MODEL,
    SHIPPED_BASELINES,
    BERTScore,
    baseline_file,
    load_baseline,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scorers"
MODELS = [RADCLIQ_MODEL, EVAL_MODEL]


@pytest.fixture(scope="module")
def goldens():
    return json.loads((FIXTURES / "goldens_clinical.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def corpus():
    return json.loads((FIXTURES / "corpus.json").read_text(encoding="utf-8"))["pairs"]


@pytest.fixture(scope="module", params=MODELS)
def scorers(request):
    name = request.param
    raw = BERTScore(name, weights_dir=FIXTURES, rescale_with_baseline=False, device="cpu", batch_size=32)
    rescaled = BERTScore(name, weights_dir=FIXTURES, device="cpu", batch_size=32)
    return name, raw, rescaled


def test_layers_and_shipped_baselines():
    assert DEFAULT_LAYERS[RADCLIQ_MODEL] == 5 and DEFAULT_LAYERS[EVAL_MODEL] == 5
    for name in MODELS:
        shipped = load_baseline(SHIPPED_BASELINES / "en" / f"{name}.tsv", 5)
        assert load_baseline(baseline_file(name), 5).tolist() == shipped.tolist()
    # metrics.md section 3: distilroberta-base layer 5 F baseline.
    assert load_baseline(SHIPPED_BASELINES / "en" / "distilroberta-base.tsv", 5)[2].item() == pytest.approx(0.8473319)


def test_tokens_match_upstream(scorers, goldens):
    name, raw, _ = scorers
    assert raw.tokenize(goldens["reports"]) == goldens["bertscore"][name]["input_ids"]
    assert max(map(len, goldens["bertscore"][name]["input_ids"])) == 512  # truncation exercised


def test_scores_match_upstream(scorers, goldens, corpus):
    name, raw, rescaled = scorers
    hyps, refs = [p["hyp"] for p in corpus], [p["ref"] for p in corpus]
    for scorer, key in ((raw, "raw"), (rescaled, "rescaled")):
        result = scorer.score(hyps, refs)
        gold = goldens["bertscore"][name][key]
        for ours, field in ((result.precision, "P"), (result.recall, "R"), (result.f1, "F")):
            np.testing.assert_allclose(ours, np.array(gold[field]), atol=1e-5, rtol=0, err_msg=f"{name} {key} {field}")


def test_empty_strings_score_zero_before_rescaling(scorers):
    _, raw, rescaled = scorers
    result = raw.score(["", "no acute process", "   "], ["no acute process", "", "   "])
    assert result.f1.tolist() == [0.0, 0.0, 0.0] and result.precision.tolist() == [0.0, 0.0, 0.0]
    b = rescaled.baseline[2].item()
    np.testing.assert_allclose(rescaled.f1([""], ["x y z"]), [-b / (1 - b)], rtol=1e-6)


def test_identical_texts_score_one(scorers):
    _, raw, _ = scorers
    np.testing.assert_allclose(raw.f1(["mild cardiomegaly."], ["mild cardiomegaly."]), [1.0], atol=1e-6)


def test_each_distinct_sentence_is_embedded_once(scorers):
    _, raw, _ = scorers
    raw.forward_calls = 0
    refs = ["no acute process."] * 8 + ["mild edema."] * 8
    hyps = [f"finding {i % 4}" for i in range(16)]
    batched = raw.f1(hyps, refs)
    assert raw.forward_calls == 1  # 6 distinct sentences, one batch of 32
    alone = np.array([raw.f1([h], [r])[0] for h, r in zip(hyps, refs)])
    np.testing.assert_allclose(batched, alone, atol=1e-6)  # padding and pairing do not change a pair's score


def test_missing_model_names_the_hub_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("RADVLM_SCORER_WEIGHTS_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="distilbert/distilroberta-base"):
        BERTScore(RADCLIQ_MODEL, weights_dir=tmp_path, device="cpu")


@pytest.fixture(scope="module")
def special_goldens():
    return json.loads((FIXTURES / "goldens_special_tokens.json").read_text(encoding="utf-8"))


def test_special_token_strings_in_text_match_upstream(scorers, special_goldens):
    """`<mask>`, `</s>`, `[SEP]`... written inside a text are split as bert-score's slow tokenizers split them."""
    name, _, rescaled = scorers
    gold = special_goldens["bertscore"][name]
    assert rescaled.tokenize(special_goldens["texts"]) == gold["input_ids"]
    hyps, refs = zip(*special_goldens["pairs"])
    result = rescaled.score(hyps, refs)
    for ours, field in ((result.precision, "P"), (result.recall, "R"), (result.f1, "F")):
        np.testing.assert_allclose(ours, gold["rescaled"][field], atol=1e-5, rtol=0, err_msg=f"{name} {field}")
    if name == RADCLIQ_MODEL:  # the pair: bert-score 0.481, this scorer -0.385 before the fix
        assert result.f1[0] == pytest.approx(0.4809, abs=1e-4)
