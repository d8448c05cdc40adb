"""The clinical rewards (radcliq, bertscore, radgraph_f1): preprocessing, penalties, batching, logging, GRPO."""

import json
import math
import pickle
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from radvlm_grpo.rewards import clinical as clinical_rewards
from radvlm_grpo.rewards import get_reward_funcs
from radvlm_grpo.vocab.schema import REPORT_GENERATION

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "scorers"
OPTIONS = {"scorer_weights_dir": str(FIXTURES), "scorer_device": "cpu"}
REF = "The heart size is normal. No focal consolidation, pleural effusion or pneumothorax."


def conv(text):
    return [{"role": "assistant", "content": text}]


class StubScorer:
    """Records what it is given; scores a pair by its answer's length; fails on answers containing "boom"."""

    def __init__(self):
        self.calls = []

    def __call__(self, preds, refs):
        self.calls.append((list(preds), list(refs)))
        if any("boom" in p for p in preds):
            raise RuntimeError("scorer crashed")
        scores = np.array([float("nan") if "nan" in p else len(p) / 1000 for p in preds])
        return scores, {"radgraph": np.full(len(preds), 0.5), "bleu": np.full(len(preds), 0.25)}


@pytest.fixture
def stub(monkeypatch):
    scorer = StubScorer()
    monkeypatch.setattr(clinical_rewards, "get_scorer", lambda kind, **config: scorer)
    return scorer


def test_registered_names_and_options():
    funcs = get_reward_funcs(["radcliq", "bertscore", "radgraph_f1"], **OPTIONS, radgraph_model="radgraph")
    assert [f.__name__ for f in funcs] == ["radcliq", "bertscore", "radgraph_f1"]
    assert [f.penalty for f in funcs] == [-3.0, 0.0, 0.0]
    clone = pickle.loads(pickle.dumps(funcs[0]))  # the models stay out of the pickle and come back on use
    assert clone._scorer is None and clone.scorer is funcs[0].scorer
    with pytest.raises(ValueError, match="Unknown reward option"):
        get_reward_funcs(["radcliq"], scorer_weight_dir=str(FIXTURES))


def test_penalties_and_preprocessing(stub):
    (reward,) = get_reward_funcs(["radcliq"], thinking=True)
    long_answer = "<think>plan</think>" + "MILD Edema. " * 400
    completions = [
        conv("<think>a</think> x </think>  Mild EDEMA.  "),  # answer after the last </think>, stripped
        conv("no think tag at all, a long enough text"),  # missing </think>
        conv("<think>...</think> abc"),  # 3 characters
        conv(long_answer),
        conv("<think>.</think> boom: this pair crashes"),
        conv("<think>.</think> a nan score here"),
        conv("<think>.</think> for a short reference"),
        conv("<think>.</think> another task"),
        conv("<think>.</think> no reference"),
    ]
    solutions = [REF] * 6 + ["Clear", REF, None]
    tasks = [REPORT_GENERATION] * 7 + ["phrase_grounding", REPORT_GENERATION]
    logged = {}
    rewards = reward(completions, solution=solutions, task=tasks, log_metric=lambda k, v: logged.__setitem__(k, v))
    assert rewards[0] == pytest.approx(len("mild edema.") / 1000)
    assert rewards[1:3] == [-3.0, -3.0]
    assert rewards[3] == pytest.approx(2048 / 1000)
    assert rewards[4:7] == [-3.0, -3.0, -3.0]
    assert rewards[7:] == [None, None]
    preds, refs = stub.calls[0]
    assert preds[0] == "mild edema." and len(preds[1]) == 2048 and preds[1] == preds[1].lower()
    assert refs[0] == REF.lower()
    assert len(stub.calls) == 1 + 4  # the batch failed ("boom"), then each of its 4 pairs alone
    assert logged["radcliq/radgraph"] == 0.5 and logged["radcliq/bleu"] == 0.25
    assert logged["radcliq/missing_think_frac"] == pytest.approx(1 / 7)
    assert logged["radcliq/penalized_frac"] == pytest.approx(5 / 7)
    assert logged["radcliq/scoring_failed_frac"] == pytest.approx(1 / 4)


@pytest.mark.parametrize("name", ["bertscore", "radgraph_f1"])
def test_ablation_penalties_are_zero(stub, name):
    (reward,) = get_reward_funcs([name], thinking=True)
    completions = ["no closing tag here, long", "<think></think>tiny", "<think></think> boom boom boom"]
    assert reward(completions, solution=[REF] * 3) == [0.0, 0.0, 0.0]


def test_radcliq_reward_is_minus_radcliq_of_the_lowercased_pair():
    from radvlm_grpo.scorers.radcliq import RadCliQ

    (reward,) = get_reward_funcs(["radcliq"], **OPTIONS)
    answers = ["Mild CARDIOMEGALY. No effusion.", "No acute process.", "Mild CARDIOMEGALY. No effusion."]
    refs = ["Mild cardiomegaly.", "No acute cardiopulmonary process.", "Mild cardiomegaly."]
    logged = {}
    rewards = reward([conv(a) for a in answers], solution=refs, log_metric=lambda k, v: logged.__setitem__(k, v))
    direct = RadCliQ(weights_dir=FIXTURES, device="cpu")
    expected = -direct.score([a.lower() for a in answers], [r.lower() for r in refs])
    np.testing.assert_allclose(rewards, expected, atol=1e-6)
    features = direct.features([a.lower() for a in answers], [r.lower() for r in refs])
    for name in ("radgraph", "bertscore", "semb", "bleu"):
        assert logged[f"radcliq/{name}"] == pytest.approx(float(np.mean(features[name])), abs=1e-6)
    # Case does not matter: the answer and the reference are lowercased before scoring.
    logged.clear()
    reward([conv("NO ACUTE PROCESS.")], solution=["no acute process."], log_metric=logged.__setitem__)
    assert logged["radcliq/bertscore"] == pytest.approx(1.0, abs=1e-5) and logged["radcliq/bleu"] == pytest.approx(1.0)


def test_bertscore_and_radgraph_f1_rewards_use_their_scorers():
    from radvlm_grpo.scorers.bertscore import EVAL_MODEL, BERTScore
    from radvlm_grpo.scorers.radgraph import RadGraph, radgraph_f1

    bertscore, radgraph = get_reward_funcs(["bertscore", "radgraph_f1"], **OPTIONS)
    answers = ["Mild CARDIOMEGALY with small effusions.", "Left lower lobe opacity."]
    refs = ["Mild cardiomegaly.", "No acute cardiopulmonary process."]
    preds, lowered = [a.lower() for a in answers], [r.lower() for r in refs]
    expected = BERTScore(EVAL_MODEL, weights_dir=FIXTURES, device="cpu").f1(preds, lowered)
    np.testing.assert_allclose(bertscore(answers, solution=refs), expected, atol=1e-6)
    parser = RadGraph("radgraph-xl", model_dir=FIXTURES, device="cpu")
    hyp_ann, ref_ann = parser.annotate(preds), parser.annotate(lowered)
    expected = [radgraph_f1(h, r, "complete") for h, r in zip(hyp_ann, ref_ann)]
    np.testing.assert_allclose(radgraph(answers, solution=refs), expected, atol=1e-12)


def test_a_grpo_batch_encodes_each_reference_once():
    (reward,) = get_reward_funcs(["radcliq"], **OPTIONS, scorer_cache_size=16)
    radcliq = reward.scorer.radcliq
    radcliq.clear_cache()
    refs = [f"Report {i}: mild edema and small effusions." for i in range(4)]
    completions = [f"Completion {g % 5} for prompt {i}." for i in range(4) for g in range(8)]
    solutions = [r for r in refs for _ in range(8)]
    before = radcliq.encoded_reports
    first = reward(completions, solution=solutions)
    assert radcliq.encoded_reports - before == 4 + 4 * 5
    before = radcliq.encoded_reports
    np.testing.assert_allclose(reward(completions, solution=solutions), first, atol=1e-5)  # refs cached
    assert radcliq.encoded_reports - before == 4 * 5


@pytest.mark.slow
def test_radcliq_in_a_tiny_grpo_run(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    monkeypatch.delenv("RADVLM_SCORER_WEIGHTS_DIR", raising=False)  # the recipe fields alone find the weights
    out = tmp_path / "radcliq"
    args = [
        str(REPO_ROOT / "recipes/demo/grpo_report.yaml"),
        "--model_name_or_path", str(tiny_model_dir),
        "--dataset_name", str(synthetic_dir / "grpo"),
        "--output_dir", str(out),
        "--reward_funcs", "radcliq",
        "--max_steps", "2",
        "--per_device_train_batch_size", "4",
        "--num_generations", "4",
        "--max_completion_length", "16",
        "--logging_steps", "1",
        "--save_strategy", "no",
        "--scorer_weights_dir", str(FIXTURES),
        "--scorer_device", "cpu",
    ]  # fmt: skip
    monkeypatch.setattr(sys, "argv", ["scripts/grpo.py", *args])
    runpy.run_path(str(REPO_ROOT / "scripts/grpo.py"), run_name="__main__")
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    steps = [log for log in history if "rewards/radcliq/mean" in log]
    assert len(steps) == 2
    for log in steps:
        # -RadCliQ is unbounded below (a random model writes garbage) and at most 1.44069, an exact match.
        assert math.isfinite(log["rewards/radcliq/mean"]) and log["rewards/radcliq/mean"] <= 1.4407
        assert "radcliq/penalized_frac" in log
    scored = [log for log in steps if "radcliq/radgraph" in log]
    assert scored, "no completion was long enough to be scored"
    for log in scored:
        assert {"radcliq/bertscore", "radcliq/semb", "radcliq/bleu"} <= set(log)


@pytest.mark.parametrize("name", ["radcliq", "bertscore", "radgraph_f1"])
def test_every_clinical_reward_cuts_texts_and_the_cut_is_configurable(stub, name):
    """RadGraph's cost grows faster than the length: a babbling answer reaches the scorer cut (2048 by default)."""
    babble = "Small left effusion. " * 5000  # 105k characters
    for options, cut in (({}, 2048), ({"report_max_chars": 300}, 300)):
        (reward,) = get_reward_funcs([name], **options)
        stub.calls.clear()
        reward([conv(babble)], solution=[babble], task=[REPORT_GENERATION])
        (preds, refs), *_ = stub.calls
        assert [len(preds[0]), len(refs[0])] == [cut, cut] and preds[0] == babble[:cut].lower()
    with pytest.raises(ValueError, match="report_max_chars must be a positive integer"):
        get_reward_funcs([name], report_max_chars=0)
