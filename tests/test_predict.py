"""scripts/predict.py and models.inference: a checkpoint (folder or LoRA adapter) on image files or a dataset split,
the answer printed, the boxes drawn and labelled, and clear errors before the model loads."""

import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import GROUNDING_ANSWER, GROUNDING_SUBJECT
from PIL import Image

from radvlm_grpo.cli import UserError, user_error
from radvlm_grpo.models.inference import (
    PRED_COLOR,
    REFERENCE_COLOR,
    build_question,
    describe_boxes,
    draw_boxes,
    load_predictor,
    open_image,
    resolve_sources,
)
from radvlm_grpo.vocab.prompts import FirstTemplate, grounding_question

REPO_ROOT = Path(__file__).resolve().parents[1]
BOX = [0.12, 0.2, 0.45, 0.85]


def base_weights(model_dir):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(model_dir).state_dict()


def predict(*args: str):
    script = runpy.run_path(str(REPO_ROOT / "scripts/predict.py"))
    return script["main"](list(args))


def edge_pixels(image: Image.Image, box, inset: int = 1) -> np.ndarray:
    """The pixels just inside the left and right edges of a normalised box (the label covers part of the top)."""
    pixels = np.asarray(image)
    width, height = image.size
    x1, y1, x2, y2 = (round(v * s) for v, s in zip(box, (width, height, width, height)))
    ys = range(y1 + (y2 - y1) // 3, y2 - 2)
    return np.array([pixels[y, x] for y in ys for x in (x1 + inset, x2 - inset)])


def test_questions_come_from_the_training_templates():
    assert build_question("report_generation") == "Provide a radiology report for this Chest X-Ray."
    assert (
        build_question("anatomical_grounding", "Right lung") == "Where is the right lung located in this Chest X-ray?"
    )
    # The phrase goes through the same normalisation as the training data's (prompts.grounding_question).
    assert build_question("phrase_grounding", "Small effusion.", thinking=True) == (
        "Please locate the following sentence: small effusion. /think"
    )
    assert build_question("phrase_grounding", "Small effusion.") == grounding_question(
        "phrase_grounding", "Small effusion.", FirstTemplate()
    )
    with pytest.raises(UserError, match="abnormality_grounding needs what to locate: the abnormality"):
        build_question("abnormality_grounding", "  ")
    with pytest.raises(UserError, match="Unknown task 'grounding'; choose one of report_generation"):
        build_question("grounding")


def test_boxes_are_drawn_labelled_and_invalid_ones_left_out():
    image = Image.new("RGB", (200, 100), (0, 0, 0))
    drawn = draw_boxes(
        image, np.array([BOX, [0.9, 0.9, 0.1, 0.1]]), "heart", reference_boxes=np.array([[0.5, 0.1, 0.9, 0.5]])
    )
    assert drawn.size == image.size and np.asarray(image).max() == 0  # a copy; the input is untouched
    assert (edge_pixels(drawn, BOX) == PRED_COLOR).all(axis=1).all()
    assert (edge_pixels(drawn, [0.5, 0.1, 0.9, 0.5]) == REFERENCE_COLOR).all(axis=1).all()
    assert describe_boxes(np.array([BOX, [0.9, 0.9, 0.1, 0.1]])) == (
        "1: [0.12, 0.2, 0.45, 0.85]\n2: [0.9, 0.9, 0.1, 0.1] (invalid)"
    )
    empty = draw_boxes(image, np.zeros((0, 4)))
    red = (np.asarray(empty) == PRED_COLOR).all(axis=2)
    assert red.any() and red[:50].sum() == 0, "'no box predicted' is written at the bottom"
    assert describe_boxes(np.zeros((0, 4))) == "no box"


def test_predict_grounding_prints_the_boxes_and_writes_the_drawn_image(
    monkeypatch, capsys, tmp_path, grounding_model_dir, xray_png
):
    out = tmp_path / "out"
    other = tmp_path / "other" / xray_png.name
    other.parent.mkdir()
    shutil.copy(xray_png, other)
    records = predict(
        "--model_name_or_path", str(grounding_model_dir),
        "--images", str(xray_png), str(other),
        "--task", "anatomical_grounding",
        "--phrase", GROUNDING_SUBJECT,
        "--max_new_tokens", "40",
        "--output_dir", str(out),
    )  # fmt: skip
    printed = capsys.readouterr().out
    assert f"answer: {GROUNDING_ANSWER}" in printed and "boxes:\n1: [0.12, 0.2, 0.45, 0.85]" in printed
    assert [r["boxes"] for r in records] == [[BOX], [BOX]]
    assert [Path(r["image_with_boxes"]).name for r in records] == ["cxr_0.png", "cxr_1.png"]  # same stem: numbered
    drawn = Image.open(out / "cxr_0.png").convert("RGB")
    assert drawn.size == Image.open(xray_png).size
    assert (edge_pixels(drawn, BOX) == PRED_COLOR).all(axis=1).mean() > 0.9
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert lines[0]["question"] == "Where is the right lung located in this Chest X-ray?"
    assert lines[0]["answer"] == GROUNDING_ANSWER and lines[0]["source"] == str(xray_png)


def test_predict_a_report_and_a_lora_adapter_without_a_processor(
    monkeypatch, capsys, tmp_path, tiny_model_dir, xray_png
):
    """An adapter folder holds no processor: it comes from the base recorded in adapter_config.json. The adapter's
    weights are non-zero, so the loaded model must be the base with the adapter merged in, not the base alone."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    adapter = tmp_path / "adapter"
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, weight in peft_model.named_parameters():
            if "lora_B" in name:
                weight.normal_(0.0, 0.5, generator=torch.Generator().manual_seed(0))
    peft_model.save_pretrained(adapter)
    expected = {k: v.clone() for k, v in peft_model.merge_and_unload().state_dict().items()}
    loaded = load_predictor(str(adapter)).generator.model.state_dict()
    changed = [k for k in expected if "q_proj" in k and not torch.equal(expected[k], base_weights(tiny_model_dir)[k])]
    assert changed and all(torch.allclose(loaded[k], expected[k], atol=1e-6) for k in changed)
    assert not any(adapter.glob("*processor*"))
    assert resolve_sources(str(adapter)) == {
        "base": str(tiny_model_dir),
        "adapter": str(adapter),
        "processor": str(tiny_model_dir),
    }
    common = ["--images", str(xray_png), "--max_new_tokens", "12"]
    from_adapter = predict("--model_name_or_path", str(adapter), *common)
    assert from_adapter[0]["task"] == "report_generation" and "boxes" not in from_adapter[0]
    assert from_adapter[0]["question"] == "Provide a radiology report for this Chest X-Ray."
    assert capsys.readouterr().out.count("== ") == 1


def test_predict_on_a_dataset_split_draws_the_reference_boxes(
    monkeypatch, capsys, tmp_path, tiny_model_dir, synthetic_dir
):
    out = tmp_path / "out"
    records = predict(
        "--model_name_or_path", str(tiny_model_dir),
        "--dataset_name", str(synthetic_dir / "grpo"),
        "--task", "phrase_grounding",
        "--max_samples", "2",
        "--max_new_tokens", "8",
        "--output_dir", str(out),
    )  # fmt: skip
    assert len(records) == 2 and {r["task"] for r in records} == {"phrase_grounding"}
    for record in records:
        assert record["question"].startswith(("Please", "Identify", "Highlight", "Where", "Find", "Mark"))
        assert record["reference_boxes"] and record["reference"]
        drawn = Image.open(record["image_with_boxes"]).convert("RGB")
        green = (np.asarray(drawn) == REFERENCE_COLOR).all(axis=2)
        assert green.sum() > 20, "the reference boxes are drawn in green"


def test_clear_errors_before_the_model_loads(monkeypatch, tmp_path, tiny_model_dir, xray_png):
    import radvlm_grpo.models.loading

    real_get_model = radvlm_grpo.models.loading.get_model

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the error")

    # Every bad input below must be refused before any weights load (the one run that should load restores it).
    monkeypatch.setattr(radvlm_grpo.models.loading, "get_model", no_model)
    model = ["--model_name_or_path", str(tiny_model_dir)]
    with pytest.raises(FileNotFoundError, match="Image .*missing.png does not exist; check the path") as missing:
        predict(*model, "--images", str(tmp_path / "missing.png"))
    assert user_error(missing.value) is missing.value  # what run_cli prints as the one error line
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(UserError, match="Cannot read .*notes.png as an image .*give a PNG, JPEG or other image file"):
        predict(*model, "--images", str(tmp_path / "notes.png"))
    (tmp_path / "scan.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(UserError, match="Cannot read .*scan.png as an image"):
        open_image(tmp_path / "scan.png")
    no_processor = tmp_path / "weights-only"
    no_processor.mkdir()
    for name in ("config.json", "generation_config.json", "model.safetensors"):
        shutil.copy(tiny_model_dir / name, no_processor / name)
    with pytest.raises(UserError, match="has no processor .*--processor_name_or_path"):
        predict("--model_name_or_path", str(no_processor), "--images", str(xray_png))
    monkeypatch.setattr(radvlm_grpo.models.loading, "get_model", real_get_model)
    records = predict(
        "--model_name_or_path", str(no_processor),
        "--processor_name_or_path", str(tiny_model_dir),
        "--images", str(xray_png),
        "--max_new_tokens", "4",
    )  # fmt: skip
    assert len(records) == 1
    monkeypatch.setattr(radvlm_grpo.models.loading, "get_model", no_model)
    with pytest.raises(FileNotFoundError, match="neither a model .* nor a LoRA adapter"):
        predict("--model_name_or_path", str(tmp_path), "--images", str(xray_png))
    with pytest.raises(UserError, match="either --images .* or --dataset_name"):
        predict(*model)
    with pytest.raises(UserError, match="--task anatomical_grounding needs --phrase: the anatomical region"):
        predict(*model, "--images", str(xray_png), "--task", "anatomical_grounding")
    with pytest.raises(UserError, match="--phrase is what a grounding task locates"):
        predict(*model, "--images", str(xray_png), "--phrase", "heart")
    with pytest.raises(UserError, match="--phrase is for --images"):
        predict(*model, "--dataset_name", str(tmp_path), "--phrase", "heart")
