"""``scorer_dtype``: which models change precision, that TF32 stays inside them, and how the option is checked."""

from pathlib import Path

import numpy as np
import pytest
import torch
from trl import GRPOConfig, ModelConfig

from radvlm_grpo.rewards import get_reward_funcs
from radvlm_grpo.scorers.precision import SCORER_DTYPES, check_scorer_dtype, set_precision, set_scorer_dtype
from radvlm_grpo.scorers.radcliq import RadCliQ
from radvlm_grpo.training.configs import GRPOScriptArguments, parse_recipe

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "scorers"
OPTIONS = {"scorer_weights_dir": str(FIXTURES), "scorer_device": "cpu"}
REFS = [
    "The heart size is normal. No focal consolidation, pleural effusion or pneumothorax.",
    "Mild cardiomegaly. Small left pleural effusion with adjacent atelectasis.",
]
HYPS = [
    "Heart size is normal. No consolidation or effusion.",
    "Normal heart. Small right pneumothorax.",
    "Mild cardiomegaly with a small left effusion.",
    "Lungs are clear. No acute process.",
]


def dtypes(module: torch.nn.Module) -> set[torch.dtype]:
    return {p.dtype for p in module.parameters()}


def test_names_are_checked():
    assert SCORER_DTYPES == ("float32", "tf32", "bfloat16")
    assert check_scorer_dtype("bfloat16") == "bfloat16"
    with pytest.raises(ValueError, match="float32, tf32, bfloat16"):
        check_scorer_dtype("float16")
    with pytest.raises(ValueError, match="scorer_dtype"):
        GRPOScriptArguments(dataset_name="x", scorer_dtype="bf16")


def test_bfloat16_changes_chexbert_and_bertscore_but_not_radgraph():
    exact = RadCliQ("radgraph-xl", weights_dir=FIXTURES, device="cpu")
    fast = RadCliQ("radgraph-xl", weights_dir=FIXTURES, device="cpu")
    set_scorer_dtype(fast, "bfloat16")
    assert dtypes(fast.chexbert.network) == {torch.bfloat16} and dtypes(fast.bertscore.model) == {torch.bfloat16}
    assert dtypes(fast.radgraph.network) == {torch.float32}
    hyps = HYPS * 2
    refs = [REFS[0]] * 4 + [REFS[1]] * 4
    f32, bf16 = exact.features(hyps, refs), fast.features(hyps, refs)
    np.testing.assert_array_equal(f32["radgraph"], bf16["radgraph"])  # RadGraph ran in float32 in both
    np.testing.assert_array_equal(f32["bleu"], bf16["bleu"])
    for name in ("bertscore", "semb"):  # changed, but only a little
        difference = np.abs(f32[name] - bf16[name])
        assert difference.max() > 0, f"{name} did not run in bfloat16"
        assert difference.max() < 0.05, name
    assert all(isinstance(x, np.ndarray) and x.dtype == np.float64 for x in bf16.values())


def test_tf32_is_on_only_inside_the_models_forward():
    seen = []

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.backends.cuda.matmul.fp32_precision)
            if x.numel() == 0:
                raise RuntimeError("empty")
            return x

    probe = Probe()
    set_precision([probe], "tf32")
    # A recipe's `tf32: true` sets torch's fp32_precision API for the whole process (transformers' enable_tf32);
    # reading the legacy allow_tf32 flag after that raises, so the wrapper must use the same API.
    backends = torch.backends
    previous = backends.fp32_precision
    try:
        for policy in ("ieee", "tf32"):
            backends.fp32_precision = policy
            before = backends.cuda.matmul.fp32_precision
            seen.clear()
            probe(torch.ones(2))
            assert seen == ["tf32"] and backends.cuda.matmul.fp32_precision == before
            with pytest.raises(RuntimeError, match="empty"):
                probe(torch.ones(0))
            assert seen == ["tf32", "tf32"] and backends.cuda.matmul.fp32_precision == before
    finally:
        backends.fp32_precision = previous
    assert dtypes(probe) == set()  # nothing was cast


def test_reward_option_reaches_the_scorers():
    radcliq, bertscore = get_reward_funcs(["radcliq", "bertscore"], **OPTIONS, scorer_dtype="bfloat16")
    assert dtypes(radcliq.scorer.radcliq.chexbert.network) == {torch.bfloat16}
    assert dtypes(radcliq.scorer.radcliq.radgraph.network) == {torch.float32}
    assert dtypes(bertscore.scorer.bertscore.model) == {torch.bfloat16}
    (exact,) = get_reward_funcs(["radcliq"], **OPTIONS)
    assert exact.scorer is not radcliq.scorer and dtypes(exact.scorer.radcliq.chexbert.network) == {torch.float32}
    completions = [[{"role": "assistant", "content": h}] for h in HYPS]
    fast = radcliq(completions, solution=[REFS[0]] * len(HYPS))
    slow = exact(completions, solution=[REFS[0]] * len(HYPS))
    assert np.abs(np.array(fast) - np.array(slow)).max() < 0.05
    with pytest.raises(ValueError, match="radgraph_f1 runs RadGraph in float32 only"):
        get_reward_funcs(["radgraph_f1"], **OPTIONS, scorer_dtype="bfloat16")
    with pytest.raises(ValueError, match="scorer_dtype must be one of"):
        get_reward_funcs(["radcliq"], **OPTIONS, scorer_dtype="half")


def test_recipe_field():
    recipe = str(REPO_ROOT / "recipes/demo/grpo_report.yaml")
    types = (GRPOScriptArguments, GRPOConfig, ModelConfig)
    assert parse_recipe(types, [recipe])[0].scorer_dtype == "float32"
    assert parse_recipe(types, [recipe, "--scorer_dtype", "bfloat16"])[0].scorer_dtype == "bfloat16"
