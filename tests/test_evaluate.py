"""scripts/evaluate.py end to end on the tiny model and the synthetic test split: outputs, resume after a crash,
refusal to mix settings, missing scorer weights named before generation, and exact scores with an oracle."""

import json
import runpy
import sys
from pathlib import Path
from unittest.mock import MagicMock

import numpy as np
import pytest
from huggingface_hub import ModelCard

from radvlm_grpo.evaluation.clinical import ScorerUnavailable
from radvlm_grpo.evaluation.config import EvaluationArguments
from radvlm_grpo.evaluation.run import run_evaluation
from radvlm_grpo.generation import GenerationResult, SamplingSettings, TransformersGenerator

REPO_ROOT = Path(__file__).resolve().parents[1]
FIXTURE_SCORERS = REPO_ROOT / "tests/fixtures/scorers"
CLINICAL = ["bertscore", "chexbert", "radgraph", "radcliq"]
SECRET = "hf_SECRETtokenThatMustNeverLeak1234"


def run_script(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["scripts/evaluate.py", *args])
    runpy.run_path(str(REPO_ROOT / "scripts/evaluate.py"), run_name="__main__")


def script_args(model_dir, data_dir, output_dir, *extra) -> list[str]:
    return [
        "--model_name_or_path", str(model_dir),
        "--dataset_name", str(data_dir / "grpo"),
        "--output_dir", str(output_dir),
        "--max_new_tokens", "6",
        "--batch_size", "4",
        "--n_bootstrap", "200",
        "--backend", "transformers",
        "--model_label", "tiny",
        "--skip_metrics", *CLINICAL,
        *extra,
    ]  # fmt: skip


def test_evaluate_writes_everything_and_resumes_after_a_crash(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    out = tmp_path / "eval"
    original = TransformersGenerator.generate
    asked = []

    def crash_on_second_batch(self, requests, settings):
        if asked:
            raise RuntimeError("simulated crash")
        asked.extend(r.id for r in requests)
        return original(self, requests, settings)

    monkeypatch.setattr(TransformersGenerator, "generate", crash_on_second_batch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_script(monkeypatch, *script_args(tiny_model_dir, synthetic_dir, out))
    first = [json.loads(line)["id"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert first == asked and len(first) == 4

    resumed = []

    def counting(self, requests, settings):
        resumed.extend(r.id for r in requests)
        return original(self, requests, settings)

    monkeypatch.setattr(TransformersGenerator, "generate", counting)
    run_script(monkeypatch, *script_args(tiny_model_dir, synthetic_dir, out))
    ids = [json.loads(line)["id"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 8 and set(resumed).isdisjoint(first) and len(resumed) == 4

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 8 and metrics["generation"]["rows"] == 8
    groups = metrics["metrics"]
    assert set(groups) == {
        "report_generation",
        "anatomical_grounding",
        "abnormality_grounding",
        "phrase_grounding",
        "grounding",
    }
    for name in ("rouge_l", "bleu", "gleu", "avg_chars"):
        interval = groups["report_generation"][name]
        assert interval["low"] <= interval["value"] <= interval["high"] and interval["n"] == 2
    assert set(groups["grounding"]) == {"map_50", "avg_iou", "soft_f1"} and groups["grounding"]["map_50"]["n"] == 6
    assert metrics["not_computed"] == {
        **dict.fromkeys(CLINICAL, "skipped with --skip_metrics"),
        "green": "no --green_model given",
    }

    results = (out / "results.md").read_text()
    assert "| **tiny** | 0.000293 |" in results and "| RadVLM+RL | 8 | 29.9 |" in results
    assert (
        "Phrase (source not recorded)" in results
        and "Not computed: bertscore (skipped with --skip_metrics)" in results
    )
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["id"] for s in samples] == ids and all("answer" in s for s in samples)
    assert {p.name for p in (out / "figures").iterdir()} == {"report_lengths.png", "grounding_boxes.png"}
    assert all(
        (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"
        for name in ("report_lengths.png", "grounding_boxes.png")
    )
    card = ModelCard.load(out / "model_card.md")
    assert {(r.dataset_config, r.metric_type) for r in card.data.eval_results} >= {("report_generation", "rouge_l")}
    assert "![Predicted and true boxes](figures/grounding_boxes.png)" in card.text
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".md", ".json", ".jsonl"):
            assert SECRET not in path.read_text()

    # Other decoding settings in the same folder would mix two evaluations: refused.
    with pytest.raises(ValueError, match="--overwrite"):
        run_script(monkeypatch, *script_args(tiny_model_dir, synthetic_dir, out, "--max_new_tokens", "7"))


def test_missing_scorer_weights_stop_before_the_model_loads(monkeypatch, tmp_path, synthetic_dir):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    args = EvaluationArguments(
        model_name_or_path=str(tmp_path / "no-model-here"),
        dataset_name=str(synthetic_dir / "grpo"),
        output_dir=str(tmp_path / "eval"),
        scorers_dir=str(tmp_path / "no-weights"),
    )
    with pytest.raises(ScorerUnavailable, match="--skip_metrics bertscore"):
        run_evaluation(args, SamplingSettings())
    assert not (tmp_path / "eval").exists()


class Oracle:
    """Answers every row with its reference (as a thinking model would write it), except rows in ``unclosed``."""

    def __init__(self, dataset, unclosed=()):
        self.answers = dict(zip(dataset["id"], dataset["solution"]))
        self.unclosed = set(unclosed)
        self.calls = 0

    def generate(self, requests, settings):
        self.calls += 1
        return [
            GenerationResult(
                r.id, ("<think>hmm" if r.id in self.unclosed else "<think>hmm</think>") + self.answers[r.id], 9, False
            )
            for r in requests
        ]


def test_an_oracle_scores_perfectly_and_unclosed_thinking_scores_zero(tmp_path, synthetic_dir):
    from datasets import load_from_disk

    test = load_from_disk(str(synthetic_dir / "grpo"))["test"]
    unclosed = [i for i, t in zip(test["id"], test["task"]) if t == "anatomical_grounding"][:1]
    args = EvaluationArguments(
        model_name_or_path="me/oracle",
        dataset_name=str(synthetic_dir / "grpo"),
        output_dir=str(tmp_path / "eval"),
        thinking=True,
        skip_metrics=CLINICAL,
        n_bootstrap=100,
    )
    metrics = run_evaluation(args, SamplingSettings(), generator=Oracle(test, unclosed))
    groups = metrics["metrics"]
    assert groups["report_generation"]["rouge_l"]["value"] == 1.0
    assert groups["abnormality_grounding"]["map_50"]["value"] == 1.0
    assert groups["abnormality_grounding"]["soft_f1"]["value"] == pytest.approx(1.0)
    assert groups["anatomical_grounding"]["map_50"]["value"] == 0.5  # one of two answers lacks </think>
    assert metrics["generation"]["missing_think_close"] == 1
    assert "| **oracle** | – | 100.0 |" in (tmp_path / "eval/results.md").read_text()


def test_clinical_metrics_with_fixture_weights(tmp_path, synthetic_dir):
    pytest.importorskip("radvlm_grpo.scorers.radgraph")
    from datasets import load_from_disk

    test = load_from_disk(str(synthetic_dir / "grpo"))["test"]
    args = EvaluationArguments(
        model_name_or_path="me/oracle",
        dataset_name=str(synthetic_dir / "grpo"),
        output_dir=str(tmp_path / "eval"),
        tasks=["report_generation"],
        thinking=True,
        scorers_dir=str(FIXTURE_SCORERS),
        scorer_device="cpu",
        n_bootstrap=100,
    )
    metrics = run_evaluation(args, SamplingSettings(), generator=Oracle(test))
    report = metrics["metrics"]["report_generation"]
    assert {
        "bertscore",
        "chexbert_micro_f1_14",
        "chexbert_macro_f1_5",
        "radgraph_simple",
        "radgraph_complete",
        "radcliq_v1",
    } <= set(report)
    assert report["bertscore"]["value"] == pytest.approx(1.0, abs=1e-5)  # identical texts
    assert np.isfinite(report["radcliq_v1"]["value"]) and metrics["not_computed"] == {
        "green": "no --green_model given"
    }
    assert (tmp_path / "eval/figures/chexbert_per_condition.png").is_file()


def test_thinking_answers_without_think_close_are_regenerated_when_sampling(tmp_path, synthetic_dir, caplog):
    from datasets import load_from_disk

    test = load_from_disk(str(synthetic_dir / "grpo"))["test"]
    first_report = test["id"][test["task"].index("report_generation")]

    class ClosesOnSecondTry(Oracle):
        def generate(self, requests, settings):
            results = super().generate(requests, settings)
            if self.calls == 1:
                results = [
                    GenerationResult(r.id, "<think>unfinished", 9, True) if r.id == first_report else r
                    for r in results
                ]
            return results

    args = EvaluationArguments(
        model_name_or_path="me/oracle",
        dataset_name=str(synthetic_dir / "grpo"),
        output_dir=str(tmp_path / "eval"),
        thinking=True,
        max_regenerations=3,
        skip_metrics=CLINICAL,
        n_bootstrap=50,
    )
    generator = ClosesOnSecondTry(test)
    metrics = run_evaluation(args, SamplingSettings(temperature=1.0), generator=generator)
    assert generator.calls == 2 and metrics["generation"]["regenerated"] == 1
    assert metrics["metrics"]["report_generation"]["rouge_l"]["value"] == 1.0

    # Greedy decoding would repeat the same text: no regeneration, and the log says why.
    greedy = ClosesOnSecondTry(test)
    args.output_dir, args.overwrite = str(tmp_path / "greedy"), True
    metrics = run_evaluation(args, SamplingSettings(), generator=greedy)
    assert greedy.calls == 1 and metrics["generation"]["missing_think_close"] == 1
    assert "not regenerated" in caplog.text


def test_push_to_hub_sends_the_card_figures_and_metrics(monkeypatch, tmp_path, synthetic_dir):
    from datasets import load_from_disk
    from huggingface_hub.errors import EntryNotFoundError

    import radvlm_grpo.hub

    api = MagicMock()
    api.hf_hub_download.side_effect = EntryNotFoundError("no card yet")
    monkeypatch.setattr(radvlm_grpo.hub, "HfApi", lambda: api)
    test = load_from_disk(str(synthetic_dir / "grpo"))["test"]
    args = EvaluationArguments(
        model_name_or_path="me/oracle",
        dataset_name=str(synthetic_dir / "grpo"),
        output_dir=str(tmp_path / "eval"),
        thinking=True,
        skip_metrics=CLINICAL,
        n_bootstrap=50,
        push_to_hub=True,
        hub_revision="eval",
    )
    run_evaluation(args, SamplingSettings(), generator=Oracle(test))
    (repo_id, operations), kwargs = api.create_commit.call_args
    assert repo_id == "me/oracle" and kwargs["revision"] == "eval" and kwargs["repo_type"] == "model"
    assert sorted(op.path_in_repo for op in operations) == [
        "README.md",
        "evaluation/grounding_boxes.png",
        "evaluation/metrics.json",
        "evaluation/report_lengths.png",
        "evaluation/results.md",
    ]
    card = ModelCard(operations[0].path_or_fileobj.decode())
    assert "![Report lengths](evaluation/report_lengths.png)" in card.text
    assert {(r.dataset_config, r.metric_type, r.metric_value) for r in card.data.eval_results} >= {
        ("report_generation", "rouge_l", 100.0)
    }
    api.create_repo.assert_not_called()

    with pytest.raises(ValueError, match="--hub_model_id"):
        EvaluationArguments(
            model_name_or_path=str(tmp_path), dataset_name="d", output_dir=str(tmp_path / "o"), push_to_hub=True
        )


def test_settings_come_from_a_yaml_file_with_command_line_overrides(tmp_path):
    from radvlm_grpo.configs import parse_recipe

    config = tmp_path / "eval.yaml"
    config.write_text(
        "model_name_or_path: me/model\ndataset_name: data/radvlm_grpo\noutput_dir: eval/out\nthinking: true\n"
        "temperature: 1.0\nmax_new_tokens: 4096\nskip_metrics: [green, radgraph]\n"
    )
    args, sampling, recipe = parse_recipe((EvaluationArguments, SamplingSettings), [str(config), "--max_samples", "3"])
    assert (args.model_name_or_path, args.thinking, args.max_samples, args.skip_metrics) == (
        "me/model",
        True,
        3,
        ["green", "radgraph"],
    )
    assert (sampling.temperature, sampling.max_new_tokens) == (1.0, 4096)
    assert recipe.path == str(config) and recipe.overrides == ["--max_samples", "3"]
