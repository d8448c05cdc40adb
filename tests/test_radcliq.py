"""RadCliQ-v1: the published formula by hand, the exact-match value, upstream goldens, batching and caching.

The goldens are RadCliQ-v1 computed the CXR-Report-Metric way (scikit-learn StandardScaler, then the linear model)
from upstream features on the fixture weights: RadGraph and RadGraph-XL from the radgraph package, BERTScore from
bert-score, the CheXbert [CLS] embeddings from f1chexbert, and BLEU-2 from pycocoevalcap.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from radvlm_grpo.scorers.radcliq import (
    EXACT_MATCH_RADCLIQ,
    FEATURES,
    RadCliQ,
    bleu_scores,
    coco_bleu,
    radcliq_from_features,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scorers"

# metrics.md section 4, RadCliQ-v1 (radcliq-v1.pkl), written out again here as the independent oracle.
MEAN = [0.5379231241355762, 0.6175725628125001, 0.7647942121140658, 0.44738335396242174]
SCALE = [0.3028258411486429, 0.22430938459304575, 0.2539439110169773, 0.2989271671041838]
COEFS = [-0.37708368261038905, -0.37030009974480316, -0.25261621789593225, 4.315048405024756e-12]
INTERCEPT = 2.4665525613232559e-10


def by_hand(radgraph, bertscore, semb, bleu):
    x = (radgraph, bertscore, semb, bleu)
    return sum(c * (v - m) / s for c, v, m, s in zip(COEFS, x, MEAN, SCALE)) + INTERCEPT


@pytest.fixture(scope="module")
def goldens():
    return json.loads((FIXTURES / "goldens_clinical.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def corpus():
    return json.loads((FIXTURES / "corpus.json").read_text(encoding="utf-8"))["pairs"]


def test_exact_match_value():
    assert EXACT_MATCH_RADCLIQ == pytest.approx(-1.4406902828047017, abs=1e-12)
    assert round(radcliq_from_features(1, 1, 1, 1), 5) == -1.44069
    # The degenerate single-pair idf exact match of metrics.md (bertscore = -0.8473319 / 0.1526681).
    assert radcliq_from_features(1, -0.8473319 / 0.1526681, 1, 1) == pytest.approx(9.37260554471831, abs=1e-7)


def test_formula_in_raw_feature_form():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(50, 4))
    ours = radcliq_from_features(*x.T)
    np.testing.assert_allclose(ours, [by_hand(*row) for row in x], rtol=0, atol=1e-12)
    # metrics.md's expanded form: 2.4501 - 1.2452 radgraph - 1.6508 bertscore - 0.9948 semb + 1.44e-11 bleu.
    expanded = (
        2.4501430833271307 - 1.24521633021832 * x[:, 0] - 1.6508453287258653 * x[:, 1] - 0.9947717072020826 * x[:, 2]
    )
    np.testing.assert_allclose(ours, expanded + 1.44e-11 * x[:, 3], atol=1e-9)
    assert isinstance(radcliq_from_features(0.5, 0.5, 0.5, 0.5), float)


def test_formula_on_upstream_features(goldens):
    for model_type, gold in goldens["radcliq"].items():
        f = gold["features"]
        np.testing.assert_allclose(radcliq_from_features(*(f[k] for k in FEATURES)), gold["radcliq"], atol=1e-12)
        hand = [by_hand(*row) for row in zip(*(f[k] for k in FEATURES))]
        np.testing.assert_allclose(hand, gold["radcliq"], atol=1e-12, err_msg=model_type)


def test_bleu_matches_pycocoevalcap(goldens, corpus):
    ours = bleu_scores([p["hyp"] for p in corpus], [p["ref"] for p in corpus])
    np.testing.assert_allclose(ours, goldens["bleu2"], rtol=0, atol=1e-12)
    assert coco_bleu("a b c", "a b c") == pytest.approx(1.0)
    assert coco_bleu("", "a b") == 0.0


@pytest.mark.parametrize("model_type", ["radgraph-xl", "radgraph"])
def test_scorer_matches_upstream(model_type, goldens, corpus):
    scorer = RadCliQ(model_type, weights_dir=FIXTURES, device="cpu", batch_size=16)
    features = scorer.features([p["hyp"] for p in corpus], [p["ref"] for p in corpus])
    gold = goldens["radcliq"][model_type]
    for name in FEATURES:
        np.testing.assert_allclose(features[name], gold["features"][name], atol=1e-5, rtol=0, err_msg=name)
    ours = radcliq_from_features(*(features[k] for k in FEATURES))
    np.testing.assert_allclose(ours, gold["radcliq"], atol=1e-5, rtol=0)
    same = [i for i, p in enumerate(corpus) if p["hyp"] == p["ref"] and p["hyp"].strip()]
    assert np.all(features["bertscore"][same] > 0.999) and np.all(features["semb"][same] > 0.999999)


@pytest.fixture(scope="module")
def small_scorer():
    return RadCliQ("radgraph-xl", weights_dir=FIXTURES, device="cpu", batch_size=64, cache_size=3)


def _grpo_batch(refs, generations):
    hyps = [f"{ref.split('.')[0]} variant {g % 3}." for ref in refs for g in range(generations)]
    return hyps, [ref for ref in refs for _ in range(generations)]


def test_each_reference_and_pair_is_encoded_once(small_scorer):
    scorer = small_scorer
    scorer.clear_cache()
    refs = ["No acute process.", "Mild cardiomegaly. Small left effusion.", "Stable right lower lobe opacity."]
    hyps, repeated = _grpo_batch(refs, 8)  # 3 prompts x 8 completions, 3 distinct completions per prompt
    before = (scorer.encoded_reports, scorer.chexbert.forward_calls, scorer.bertscore.forward_calls)
    first = scorer.score(hyps, repeated)
    assert scorer.encoded_reports - before[0] == 3 + 9  # distinct refs + distinct completions
    assert scorer.chexbert.forward_calls - before[1] == 1 and scorer.bertscore.forward_calls - before[2] == 1
    # The next step with the same prompts: only its new completions are encoded.
    new_hyps = [h.replace("variant", "version") for h in hyps]
    before = scorer.encoded_reports
    scorer.score(new_hyps, repeated)
    assert scorer.encoded_reports - before == 9
    # Identical pairs get identical scores, and scoring pairs alone gives the batch's values.
    np.testing.assert_array_equal(first[0:5], first[3:8])  # completions g and g + 3 of a prompt are the same text
    alone = [scorer.score([h], [r])[0] for h, r in list(zip(hyps, repeated))[:4]]
    # float32 encoders: a padded batch and a lone report differ by a few 1e-6 in RadCliQ (kernel summation order).
    np.testing.assert_allclose(first[:4], alone, atol=1e-5)


def test_reference_cache_is_bounded(small_scorer):
    scorer = small_scorer
    scorer.clear_cache()
    refs = [f"Report number {i} with mild edema." for i in range(5)]
    scorer.score(["No acute process."] * 5, refs)
    assert len(scorer.cache) == 3  # cache_size
    before = scorer.encoded_reports
    scorer.score(["No acute process."], [refs[-1]])  # recent: cached, and the hypothesis was not remembered
    assert scorer.encoded_reports - before == 1
    before = scorer.encoded_reports
    scorer.score(["No acute process."], [refs[0]])  # evicted: encoded again
    assert scorer.encoded_reports - before == 2


def test_empty_input():
    scorer = RadCliQ.__new__(RadCliQ)
    assert all(len(v) == 0 for v in RadCliQ.features(scorer, [], []).values())


def test_evaluate_modules_load_by_name_offline(tmp_path):
    """`make install`, then `evaluate.load("radcliq")` (and chexbert_f1, radgraph_f1) elsewhere, offline."""
    import os
    import subprocess
    import sys
    import textwrap

    repo = FIXTURES.parents[2]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "HF_EVALUATE_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(repo / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("RADVLM_SCORER_WEIGHTS_DIR", None)
    names = ["radcliq", "chexbert_f1", "radgraph_f1"]
    subprocess.run(
        [sys.executable, "-m", "radvlm_grpo.evaluation.install_modules", *names], env=env, cwd=elsewhere, check=True
    )
    code = textwrap.dedent(
        f"""
        import json
        import evaluate

        weights = {str(FIXTURES)!r}
        preds = ["No acute process.", "MILD cardiomegaly.", "ok"]
        refs = ["No acute process.", "Mild cardiomegaly with small effusions.", "Heart size normal."]
        out = {{}}
        radcliq = evaluate.load("radcliq", weights_dir=weights, device="cpu", keep_in_memory=True)
        out["radcliq"] = radcliq.compute(predictions=preds, references=refs, return_per_sample=True)
        out["plain"] = radcliq.compute(predictions=preds[:2], references=refs[:2], protocol="plain")
        chexbert = evaluate.load("chexbert_f1", weights_dir=weights, device="cpu", keep_in_memory=True)
        out["chexbert"] = chexbert.compute(predictions=preds, references=refs)
        radgraph = evaluate.load("radgraph_f1", weights_dir=weights, device="cpu", keep_in_memory=True)
        out["radgraph"] = radgraph.compute(predictions=preds, references=refs)
        try:
            evaluate.load("radcliq", device="cpu")
        except FileNotFoundError as error:
            out["offline_error"] = str(error)
        print(json.dumps(out))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=elsewhere, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])

    scorer = RadCliQ("radgraph-xl", weights_dir=FIXTURES, device="cpu")
    lowered = scorer.score(["no acute process.", "mild cardiomegaly."], [r.lower() for r in _EVAL_REFS[:2]])
    np.testing.assert_allclose(out["radcliq"]["per_sample"], [*lowered, 3.0], atol=1e-5)  # "ok": 5 chars or fewer
    assert out["radcliq"]["radcliq"] == pytest.approx(np.mean([*lowered, 3.0]), abs=1e-5)
    plain = scorer.score(["No acute process.", "MILD cardiomegaly."], _EVAL_REFS[:2])
    assert out["plain"]["radcliq"] == pytest.approx(float(np.mean(plain)), abs=1e-5)
    assert 0.0 <= out["chexbert"]["chexbert_micro_f1_14"] <= 1.0 and "chexbert_macro_f1_5" in out["chexbert"]
    assert set(out["radgraph"]) == {"radgraph_simple", "radgraph_partial", "radgraph_complete"}
    # No weights folder, an empty Hub cache, offline: the error names a missing file and its Hub repository.
    assert "StanfordAIMI/RRG_scorers" in out["offline_error"] and ".tar.gz" in out["offline_error"]


_EVAL_REFS = ["No acute process.", "Mild cardiomegaly with small effusions.", "Heart size normal."]


# --- weights errors --------------------------------------------------------------------------------------------------


def _offline_without_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"), raising=False)
    monkeypatch.delenv("RADVLM_SCORER_WEIGHTS_DIR", raising=False)


def _hf_commands(message: str) -> list[str]:
    return [line.strip() for line in message.splitlines() if line.strip().startswith("hf download ")]


def _assert_hf_command_runs(command: str, tmp_path) -> None:
    """The installed `hf` CLI accepts the command: offline it gets as far as the download (a usage error exits 2)."""
    import os
    import shlex
    import subprocess
    import sys

    hf = Path(sys.executable).with_name("hf")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "empty-cache"), "NO_COLOR": "1"}
    run = subprocess.run([str(hf), *shlex.split(command)[1:]], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 1) and "offline" in (run.stdout + run.stderr).lower(), (command, run.stderr[-2000:])


def test_a_weights_folder_without_the_weights_is_described_with_working_hf_commands(tmp_path, monkeypatch):
    _offline_without_weights(monkeypatch, tmp_path)
    folder = tmp_path / "weights"
    (folder / "radgraph_xl_old").mkdir(parents=True)
    (folder / "notes.txt").write_text("a misspelt model folder\n")
    with pytest.raises(FileNotFoundError) as error:
        RadCliQ(weights_dir=folder, device="cpu")
    message = str(error.value)
    assert "no local weights folder given" not in message
    assert f"{folder} holds: notes.txt, radgraph_xl_old/" in message and "radgraph-xl.tar.gz" in message
    commands = _hf_commands(message)
    assert commands == [
        "hf download StanfordAIMI/RRG_scorers radgraph-xl.tar.gz",
        f"hf download StanfordAIMI/RRG_scorers radgraph-xl.tar.gz --local-dir {folder}",
    ]

    (folder / "radgraph-xl").symlink_to(FIXTURES / "radgraph-xl")  # RadGraph found: BERTScore is next
    with pytest.raises(FileNotFoundError) as error:
        RadCliQ(weights_dir=folder, device="cpu")
    message = str(error.value)
    assert "radgraph-xl/" in message and "bertscore/distilroberta-base" in message
    include = "--include '*.json' --include '*.txt' --include '*.safetensors'"
    assert _hf_commands(message) == [
        f"hf download distilbert/distilroberta-base {include}",
        f"hf download distilbert/distilroberta-base {include} --local-dir {folder / 'bertscore' / 'distilroberta-base'}",
    ]
    commands += _hf_commands(message)

    (folder / "bertscore").mkdir()
    (folder / "bertscore" / "distilroberta-base").symlink_to(FIXTURES / "bertscore" / "distilroberta-base")
    with pytest.raises(FileNotFoundError) as error:
        RadCliQ(weights_dir=folder, device="cpu")
    message = str(error.value)
    assert "chexbert/chexbert.pth" in message and "bertscore/" in message
    assert (
        _hf_commands(message)[-1]
        == f"hf download StanfordAIMI/RRG_scorers chexbert.pth --local-dir {folder / 'chexbert'}"
    )
    commands += _hf_commands(message)
    for command in commands:
        _assert_hf_command_runs(command, tmp_path)


def test_the_downloaded_radgraph_archive_in_a_weights_folder_is_used(tmp_path, monkeypatch):
    """What `hf download StanfordAIMI/RRG_scorers radgraph-xl.tar.gz --local-dir <weights>` leaves there is read."""
    import tarfile

    _offline_without_weights(monkeypatch, tmp_path)
    monkeypatch.setenv("RADVLM_SCORERS_CACHE", str(tmp_path / "extracted"))
    folder = tmp_path / "weights"
    folder.mkdir()
    with tarfile.open(folder / "radgraph-xl.tar.gz", "w:gz") as tar:
        tar.add(FIXTURES / "radgraph-xl", arcname="radgraph-xl")
    for name in ("chexbert", "bertscore"):
        (folder / name).symlink_to(FIXTURES / name)
    scorer = RadCliQ(weights_dir=folder, device="cpu")
    assert scorer.radgraph.folder.is_relative_to(tmp_path / "extracted")
    reference = RadCliQ(weights_dir=FIXTURES, device="cpu")
    pair = (["mild cardiomegaly."], ["mild cardiomegaly with small effusions."])
    np.testing.assert_allclose(scorer.score(*pair), reference.score(*pair), atol=1e-6)
