"""scripts/evaluate.py end to end on the tiny model and the synthetic test split: outputs, resume after a crash,
refusal to mix settings, missing scorer weights named before generation, and exact scores with an oracle."""

import hashlib
import json
import logging
import runpy
import sys
from dataclasses import replace
from pathlib import Path
from unittest.mock import MagicMock

import numpy as np
import pytest
from huggingface_hub import ModelCard

from radvlm_grpo.evaluation.clinical import ScorerUnavailable
from radvlm_grpo.evaluation.config import EvaluationArguments
from radvlm_grpo.evaluation.run import run_evaluation
from radvlm_grpo.models.generation import GenerationResult, SamplingSettings, TransformersGenerator
from radvlm_grpo.publishing.cards import CardInfo, write_model_card

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
        "anatomical_grounding/synthetic",
        "abnormality_grounding/synthetic",
        "phrase_grounding/synthetic",
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
    # Synthetic rows are labelled synthetic, never with the paper's datasets (whose columns stay empty).
    assert "| Anatomy (synthetic) | Abnorm. (synthetic) | Phrase (synthetic) |" in results
    assert "| **tiny** | – | – | – | – |" in results
    assert "Not computed: bertscore (skipped with --skip_metrics)" in results
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["id"] for s in samples] == ids and all("answer" in s for s in samples)
    examples = {f"example_{k}.png" for k in (1, 2, 3)}  # one per grounding task: the card's held-out examples
    assert {p.name for p in (out / "figures").iterdir()} == {"report_lengths.png", "grounding_boxes.png", *examples}
    assert all(
        (out / "figures" / name).read_bytes()[:4] == b"\x89PNG"
        for name in ("report_lengths.png", "grounding_boxes.png")
    )
    card = ModelCard.load(out / "model_card.md")
    assert {(r.dataset_config, r.metric_type) for r in card.data.eval_results} >= {("report_generation", "rouge_l")}
    # A local folder is no Hub dataset id: type "local", and the name says which folder.
    assert {r.dataset_type for r in card.data.eval_results} == {"local"}
    assert {r.dataset_name for r in card.data.eval_results} == {f"{synthetic_dir.name}/grpo (local folder), test"}
    names = {r.task_name for r in card.data.eval_results}
    assert "Visual grounding: Anatomy (synthetic)" in names
    assert not any(d in n for n in names for d in ("Chest ImaGenome", "VinDr-CXR", "MS-CXR", "PadChest"))
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
    with pytest.raises(ScorerUnavailable) as raised:
        run_evaluation(args, SamplingSettings())
    assert not (tmp_path / "eval").exists()
    # Every missing scorer in one error, not one per run.
    assert raised.value.metrics == CLINICAL
    message = str(raised.value)
    assert "`--skip_metrics bertscore chexbert radgraph radcliq`" in message
    assert all(f"\n- {metric} (" in message for metric in CLINICAL)
    assert "radcliq (radcliq_v1): it needs the radgraph and chexbert weights" in message


class Oracle:
    """Answers every row with its reference (as a thinking model would write it), except rows in ``unclosed``;
    ``truncated``: every answer reports that it stopped at the token limit."""

    def __init__(self, dataset, unclosed=(), truncated=False):
        self.answers = dict(zip(dataset["id"], dataset["solution"]))
        self.unclosed = set(unclosed)
        self.truncated = truncated
        self.calls = 0

    def generate(self, requests, settings):
        self.calls += 1
        return [
            GenerationResult(
                r.id,
                ("<think>hmm" if r.id in self.unclosed else "<think>hmm</think>") + self.answers[r.id],
                9,
                self.truncated,
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
    assert groups["abnormality_grounding/synthetic"]["map_50"]["value"] == 1.0
    assert groups["abnormality_grounding/synthetic"]["soft_f1"]["value"] == pytest.approx(1.0)
    assert groups["anatomical_grounding/synthetic"]["map_50"]["value"] == 0.5  # one of two answers lacks </think>
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

    # Which weights produced these numbers: local folders here, with the SHA-256 of every weights file read.
    scorers = metrics["scorers"]
    assert list(scorers) == ["bertscore", "chexbert", "radgraph", "radcliq"]
    chexbert_file = FIXTURE_SCORERS / "chexbert/chexbert.pth"
    assert scorers["chexbert"] == [
        {
            "component": "CheXbert",
            "local_path": str(chexbert_file.absolute()),
            "files": {"chexbert.pth": hashlib.sha256(chexbert_file.read_bytes()).hexdigest()},
        }
    ]
    assert [r["component"] for r in scorers["radcliq"]] == ["RadGraph-XL", "BERTScore distilroberta-base", "CheXbert"]
    assert set(scorers["radgraph"][0]["files"]) == {"weights.th"}
    assert set(scorers["bertscore"][0]["files"]) == {"model.safetensors"}
    assert json.loads((tmp_path / "eval/metrics.json").read_text())["scorers"] == scorers
    digest = scorers["chexbert"][0]["files"]["chexbert.pth"][:16]
    row = f"| chexbert | CheXbert | local `{chexbert_file.absolute()}` | chexbert.pth | `{digest}` |"
    assert row in (tmp_path / "eval/results.md").read_text()
    assert row in (tmp_path / "eval/model_card.md").read_text()


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

    import radvlm_grpo.evaluation.card

    api = MagicMock()
    api.hf_hub_download.side_effect = EntryNotFoundError("no card yet")
    monkeypatch.setattr(radvlm_grpo.evaluation.card, "HfApi", lambda: api)
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
        "evaluation/example_1.png",
        "evaluation/example_2.png",
        "evaluation/example_3.png",
        "evaluation/grounding_boxes.png",
        "evaluation/metrics.json",
        "evaluation/report_lengths.png",
        "evaluation/results.md",
    ]
    card = ModelCard(operations[0].path_or_fileobj.decode())
    assert "![Report lengths](evaluation/report_lengths.png)" in card.text
    assert "| ![example 3](evaluation/example_3.png) | **phrase_grounding**: " in card.text
    assert {(r.dataset_config, r.metric_type, r.metric_value) for r in card.data.eval_results} >= {
        ("report_generation", "rouge_l", 100.0)
    }
    api.create_repo.assert_not_called()

    with pytest.raises(ValueError, match="--hub_model_id"):
        EvaluationArguments(
            model_name_or_path=str(tmp_path), dataset_name="d", output_dir=str(tmp_path / "o"), push_to_hub=True
        )


def test_settings_come_from_a_yaml_file_with_command_line_overrides(tmp_path):
    from radvlm_grpo.training.configs import parse_recipe

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


def test_answers_cut_at_the_token_limit_are_warned_about_everywhere(tmp_path, synthetic_dir, caplog):
    from datasets import load_from_disk

    test = load_from_disk(str(synthetic_dir / "grpo"))["test"]
    args = EvaluationArguments(
        model_name_or_path="me/oracle",
        dataset_name=str(synthetic_dir / "grpo"),
        output_dir=str(tmp_path / "eval"),
        thinking=True,
        skip_metrics=CLINICAL,
        n_bootstrap=20,
    )
    with caplog.at_level(logging.WARNING, logger="radvlm_grpo.evaluation.run"):
        metrics = run_evaluation(args, SamplingSettings(max_new_tokens=64), generator=Oracle(test, truncated=True))
    expected = "Warning: 8 of 8 generations (100%) stopped at max_new_tokens=64"
    assert metrics["warnings"][0].startswith(expected)
    assert f"> **{expected}" in (tmp_path / "eval/results.md").read_text()
    assert f"> **{expected}" in (tmp_path / "eval/model_card.md").read_text()
    assert expected in caplog.text

    clean = run_evaluation(
        replace(args, output_dir=str(tmp_path / "clean")), SamplingSettings(), generator=Oracle(test)
    )
    assert clean["warnings"] == [] and "Warning" not in (tmp_path / "clean/results.md").read_text()


def test_a_local_model_folder_card_gets_the_results_without_a_push(tmp_path, synthetic_dir):
    from datasets import load_from_disk

    test = load_from_disk(str(synthetic_dir / "grpo"))["test"]
    model = tmp_path / "my-grpo-model"
    write_model_card(model, CardInfo(model_id="my-grpo-model", stage="grpo"))
    assert "Not evaluated yet" in (model / "README.md").read_text()
    args = EvaluationArguments(
        model_name_or_path=str(model),
        dataset_name=str(synthetic_dir / "grpo"),
        output_dir=str(tmp_path / "eval"),
        thinking=True,
        skip_metrics=CLINICAL,
        n_bootstrap=20,
    )
    run_evaluation(args, SamplingSettings(), generator=Oracle(test))
    card = ModelCard.load(model / "README.md")
    assert "Not evaluated yet" not in card.text and "| **my-grpo-model** |" in card.text
    assert "![Predicted and true boxes](evaluation/grounding_boxes.png)" in card.text
    assert {(r.dataset_config, r.metric_type, r.metric_value) for r in card.data.eval_results} >= {
        ("report_generation", "rouge_l", 100.0)
    }
    assert sorted(p.name for p in (model / "evaluation").iterdir()) == [
        "example_1.png",
        "example_2.png",
        "example_3.png",
        "grounding_boxes.png",
        "metrics.json",
        "report_lengths.png",
        "results.md",
    ]
    assert "| ![example 1](evaluation/example_1.png) |" in card.text
    assert card.data.base_model is None and "grpo" in card.data.tags  # the training card is kept, not replaced

    # Opting out leaves the model folder alone; a card of another project is never touched.
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "README.md").write_text("---\nlicense: mit\n---\n# Someone else's card\n")
    for folder, update in ((model, False), (other, True)):
        before = (folder / "README.md").read_text()
        run_evaluation(
            replace(args, model_name_or_path=str(folder), output_dir=str(tmp_path / f"eval-{folder.name}"),
                    update_model_card=update),
            SamplingSettings(max_new_tokens=7),
            generator=Oracle(test),
        )  # fmt: skip
        assert (folder / "README.md").read_text() == before
    assert not (other / "evaluation").exists()


def test_the_card_shows_held_out_examples_with_their_boxes_next_to_the_tables(tmp_path, synthetic_dir):
    """An oracle's answers: each example's image has the reference boxes (green label) and the predicted ones drawn
    over them in red; the table names the task and gives the question, the reference and the answer."""
    import numpy as np
    from datasets import load_from_disk
    from PIL import Image

    from radvlm_grpo.models.inference import PRED_COLOR, REFERENCE_COLOR

    test = load_from_disk(str(synthetic_dir / "grpo"))["test"]
    out = tmp_path / "eval"
    args = EvaluationArguments(
        model_name_or_path="me/oracle",
        dataset_name=str(synthetic_dir / "grpo"),
        output_dir=str(out),
        thinking=True,
        skip_metrics=CLINICAL,
        n_bootstrap=20,
        num_card_examples=2,
    )
    run_evaluation(args, SamplingSettings(), generator=Oracle(test))
    text = (out / "model_card.md").read_text()
    grounding_table = text.index("### Visual grounding")
    examples = text.index("#### Held-out examples")
    assert grounding_table < examples < text.index("### All metrics with bootstrap")
    rows = [line for line in text[examples:].splitlines() if line.startswith("| ![example")]
    assert len(rows) == 2 and "example_3" not in text
    first = next(i for i, t in enumerate(test["task"]) if t != "report_generation")
    question = test[first]["prompt"][-1]["content"][-1]["text"]
    assert rows[0].startswith("| ![example 1](figures/example_1.png) | **anatomical_grounding**: ")
    assert (
        question in rows[0] and f"| {test[first]['solution']} | {test[first]['solution']} (soft-F1 1.00) |" in rows[0]
    )
    assert "**abnormality_grounding**" in rows[1]
    assert "![example_1]" not in text and "![Predicted and true boxes](figures/grounding_boxes.png)" in text

    image = Image.open(out / "figures/example_1.png").convert("RGB")
    assert max(image.size) == 320
    pixels = np.asarray(image)
    x1, y1, x2, y2 = (np.array(test[first]["boxes"][0]) * ([image.width, image.height] * 2)).round().astype(int)
    right_edge = pixels[(y1 + y2) // 2, x2 - 3 : x2 + 3]
    assert (right_edge == PRED_COLOR).all(axis=1).any(), "the predicted box is drawn where the reference is"
    assert (pixels == REFERENCE_COLOR).all(axis=2).sum() > 50, "the reference boxes are there, labelled"


def test_figures_say_when_no_box_was_predicted_and_label_every_bar(monkeypatch, tmp_path):
    from radvlm_grpo.evaluation import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda figure, path: drawn.append(figure) or Path(path))
    image = np.zeros((32, 32), dtype=np.uint8)
    truth = np.array([[0.1, 0.1, 0.5, 0.5]])
    invalid = np.full((1, 4), np.nan)
    panels = [(image, np.zeros((0, 4)), truth, "none"), (image, truth, truth, "one"), (image, invalid, truth, "bad")]
    figures.plot_boxes(panels, tmp_path / "boxes.png")
    assert [[t.get_text() for t in ax.texts] for ax in drawn[0].axes] == [
        ["no box predicted"],
        [],
        ["no box predicted"],
    ]

    per_condition = {"Edema": {"f1": 0.0, "support": 3}, "Cardiomegaly": {"f1": 0.5, "support": 4}}
    figures.plot_chexbert_per_condition(per_condition, tmp_path / "chexbert.png")
    assert [t.get_text() for t in drawn[1].axes[0].texts] == ["0.0", "50.0"]  # a zero bar is labelled, not blank


def test_scorer_weights_from_the_hub_cache_are_named_by_repository_and_commit(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from radvlm_grpo.evaluation.provenance import hub_model_record, weights_record

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--distilbert--distilbert-base-uncased"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "model.safetensors").write_bytes(b"weights")
    (snapshot / "config.json").write_text("{}")  # not a weights file: not hashed
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    expected = {
        "component": "BERTScore distilbert-base-uncased",
        "repo_id": "distilbert/distilbert-base-uncased",
        "revision": commit,
        "files": {"model.safetensors": hashlib.sha256(b"weights").hexdigest()},
    }
    assert weights_record("BERTScore distilbert-base-uncased", snapshot) == expected
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hub_model_record("BERTScore distilbert-base-uncased", "distilbert/distilbert-base-uncased") == expected
    assert hub_model_record("GREEN judge", "someone/not-cached") == {
        "component": "GREEN judge",
        "repo_id": "someone/not-cached",
        "revision": None,
        "files": {},
    }
