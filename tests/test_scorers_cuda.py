"""The upstream goldens on a CUDA GPU in exact fp32 (TF32 off): RadGraph and RadGraph-XL annotations, CheXbert
embeddings and classes, BERTScore P/R/F, RadCliQ-v1 features and scores, with the same tolerances as on the CPU.

Skipped where there is no CUDA device; ``benchmarks/gpu/reward_gpu_check.sh`` runs it on the GPU machine.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from radvlm_grpo.scorers.precision import cuda_matmul_precision

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scorers"
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module", autouse=True)
def exact_fp32():
    with cuda_matmul_precision(tf32=False):
        yield


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def clinical() -> dict:
    return _load("goldens_clinical.json")


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return _load("corpus.json")["pairs"]


@pytest.mark.parametrize("model_type", ["radgraph", "radgraph-xl"])
def test_radgraph_annotations(model_type):
    from radvlm_grpo.scorers.radgraph import RadGraph

    goldens = _load("goldens_radgraph.json")
    model = RadGraph(model_type, model_dir=FIXTURES, device="cuda", batch_size=64)
    assert next(model.network.parameters()).device.type == "cuda"
    annotations = model.annotate(goldens["reports"])
    expected = goldens["models"][model_type]["annotations"]
    mismatched = [i for i, (a, b) in enumerate(zip(annotations, expected)) if a != b]
    assert len(annotations) == len(expected) and not mismatched, f"{len(mismatched)} reports differ"


def test_chexbert(clinical):
    from radvlm_grpo.scorers.chexbert import CheXbert

    chexbert = CheXbert(weights_dir=FIXTURES, device="cuda", batch_size=16)
    out = chexbert.encode(clinical["reports"])
    gold = clinical["chexbert"]
    np.testing.assert_allclose(out.embeddings, np.array(gold["embeddings"]), atol=1e-5, rtol=0)
    assert out.classes.tolist() == gold["classes"]


@pytest.mark.parametrize("name", ["distilroberta-base", "distilbert-base-uncased"])
def test_bertscore(name, clinical, corpus):
    from radvlm_grpo.scorers.bertscore import BERTScore

    hyps, refs = [p["hyp"] for p in corpus], [p["ref"] for p in corpus]
    for key, rescale in (("raw", False), ("rescaled", True)):
        scorer = BERTScore(name, weights_dir=FIXTURES, rescale_with_baseline=rescale, device="cuda", batch_size=32)
        result = scorer.score(hyps, refs)
        gold = clinical["bertscore"][name][key]
        for ours, field in ((result.precision, "P"), (result.recall, "R"), (result.f1, "F")):
            np.testing.assert_allclose(ours, np.array(gold[field]), atol=1e-5, rtol=0, err_msg=f"{name} {key} {field}")


@pytest.mark.parametrize("model_type", ["radgraph-xl", "radgraph"])
def test_radcliq(model_type, clinical, corpus):
    from radvlm_grpo.scorers.radcliq import FEATURES, RadCliQ, radcliq_from_features

    scorer = RadCliQ(model_type, weights_dir=FIXTURES, device="cuda", batch_size=16)
    features = scorer.features([p["hyp"] for p in corpus], [p["ref"] for p in corpus])
    gold = clinical["radcliq"][model_type]
    for name in FEATURES:
        np.testing.assert_allclose(features[name], gold["features"][name], atol=1e-5, rtol=0, err_msg=name)
    ours = radcliq_from_features(*(features[k] for k in FEATURES))
    np.testing.assert_allclose(ours, gold["radcliq"], atol=1e-5, rtol=0)
