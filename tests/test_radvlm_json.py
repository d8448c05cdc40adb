"""RadVLM JSON -> project schema: streaming reader, task inference, images, SFT/GRPO rows and the CLI."""

from __future__ import annotations

import importlib.util
import io
import json
from collections import Counter
from pathlib import Path
from unittest.mock import MagicMock

import numpy as np
import pytest
from datasets import load_from_disk
from PIL import Image

from radvlm_grpo.data.radvlm_json import (
    ImageLoadError,
    ImageOptions,
    JsonSource,
    PrepareDataConfig,
    _ArrayReader,
    build_dataset,
    check_output,
    iter_json_records,
    parse_answer_boxes,
    parse_row,
    prepare_dataset,
    target_size,
    task_from_id,
    task_from_text,
    to_rgb,
)
from radvlm_grpo.vocab.schema import GRPO_FEATURES, SFT_FEATURES

REPO = Path(__file__).resolve().parents[1]
GROUNDING_ANSWER = "The bounding box for this observation is [0.12, 0.3, 0.45, 0.5] and [0.5, 0.31, 0.9, 0.6]."


def _turns(*values: str) -> list[dict]:
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": v} for i, v in enumerate(values)]


@pytest.fixture
def radvlm_files(tmp_path: Path) -> dict:
    """Images as RadVLM has them (RGB JPEG, L PNG, 16-bit PNG) and one JSON array + one JSONL of rows."""
    images = tmp_path / "images"
    (images / "mimic").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (800, 600, 3), dtype=np.uint8)).save(images / "mimic" / "a.jpg")
    Image.fromarray(rng.integers(0, 255, (300, 400), dtype=np.uint8)).save(images / "b.png")
    gradient = np.tile(np.linspace(0, 4095, 256), (64, 1)).astype(np.uint16)  # 12 bits used, as PadChest
    Image.fromarray(gradient).save(images / "c16.png")
    assert Image.open(images / "c16.png").mode == "I;16"
    rows = [
        {
            "id": "mimic-train_0",
            "image": "mimic/a.jpg",
            "conversations": _turns("<image>\nWrite a radiology report for this Chest X-ray.", "No acute findings."),
        },
        {
            "id": "mscxr-train1_1",
            "image": "b.png",
            "conversations": _turns("<image>\nPlease locate the following sentence: small effusion", GROUNDING_ANSWER),
        },
        {
            "id": "conv-grounded-train1_2",
            "image": "c16.png",
            "conversations": _turns(
                "<image>\nWhere is the cardiomegaly?", "At [0.3, 0.5, 0.7, 0.6].", "Anything else?", "No."
            ),
        },
        {
            "id": "chexpert-train_3",
            "image": "b.png",
            "conversations": _turns("<image>\nAre there any abnormalities on this Chest X-ray?", "No findings."),
            "labels": [],
        },
    ]
    array_json = tmp_path / "all_train.json"
    array_json.write_text(json.dumps(rows, indent=4))
    jsonl = tmp_path / "chestima.jsonl"
    extra = [
        {
            "id": f"row_{i}",
            "image": str(images / "c16.png"),  # absolute, as RadVLM writes them
            "conversations": _turns(
                "<image>\nWhere is the right lung located in this Chest X-ray?",
                f"The right lung is located at the coordinates [0.1, 0.2, 0.4, 0.{i + 5}] on the image.",
            ),
        }
        for i in range(2)
    ]
    jsonl.write_text("\n".join(json.dumps(r) for r in extra) + "\n")
    return {"images": images, "array": array_json, "jsonl": jsonl, "rows": rows}


# --- parsing and inference -------------------------------------------------------------------------------------------


def test_parse_answer_boxes():
    assert parse_answer_boxes(GROUNDING_ANSWER) == [[0.12, 0.3, 0.45, 0.5], [0.5, 0.31, 0.9, 0.6]]
    assert parse_answer_boxes("a [1, 2, 3, 4], [0.5,0.5,1,1] and [0.1, 0.2]") == [[1, 2, 3, 4], [0.5, 0.5, 1, 1]]
    assert parse_answer_boxes("No acute cardiopulmonary process.") == []


@pytest.mark.parametrize(
    ("row_id", "task"),
    [
        ("mimic-train_12", "report_generation"),
        ("chexpertplus-train_3", "report_generation"),
        ("mimic-labels-train_4", "classification"),
        ("chestima-train_5", "anatomical_grounding"),
        ("vindr-cxr-mono-train1_6", "abnormality_grounding"),
        ("vindr-cxr-train2_7", "abnormality_detection"),
        ("padchest-train2_8", "phrase_grounding"),
        ("conv-grounded-padchest-train3_9", "grounded_conversation"),
        ("conv-test_9", "conversation"),
        ("something_else_1", None),
    ],
)
def test_task_from_id(row_id, task):
    assert task_from_id(row_id) == task


@pytest.mark.parametrize(
    ("questions", "answers", "task"),
    [
        (["Draft a concise report for this image. /think"], ["Heart size normal."], "report_generation"),
        (["Find the region corresponding to: left effusion"], [GROUNDING_ANSWER], "phrase_grounding"),
        (
            ["Where is the Cardiomegaly located in this Chest X-ray?"],
            ["At [0.3, 0.5, 0.7, 0.6]."],
            "abnormality_grounding",
        ),
        (
            ["Show me the right hilar structures's location on this CXR."],
            ["[0.1, 0.1, 0.2, 0.2]"],
            "anatomical_grounding",
        ),
        (
            ["Tell me about any lesions on this X-ray and detail their specific locations."],
            ["None."],
            "abnormality_detection",
        ),
        (["Identify abnormalities on this image"], ["Edema."], "classification"),
        (["Q1", "Q2"], ["A1 [0.1, 0.1, 0.2, 0.2]", "A2"], "grounded_conversation"),
        (["Q1", "Q2"], ["A1", "A2"], "conversation"),
        (["Find the region corresponding to: left effusion"], ["Nowhere."], "unknown"),
        (["What is this?"], ["A chest X-ray."], "unknown"),
    ],
)
def test_task_from_text(questions, answers, task):
    assert task_from_text(questions, answers) == task


def test_parse_row_places_image_parts():
    record = {"id": "r", "image": "x.png", "conversations": _turns("Compare <image>\nwith this", "Same.")}
    row = parse_row(record, "fallback")
    assert row.messages[0]["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "text": None},
        {"type": "text", "text": "with this"},
    ]
    no_tag = parse_row({"image": "x.png", "conversations": _turns("Q", "A")}, "file_7")
    assert no_tag.id == "file_7" and no_tag.messages[0]["content"][0] == {"type": "image", "text": None}
    with pytest.raises(ValueError, match="2 <image> tag"):
        parse_row({"id": "bad", "image": "x.png", "conversations": _turns("<image><image>Q", "A")}, "f")


def test_json_source_parse(tmp_path):
    assert JsonSource.parse("a.json:report_generation") == JsonSource("a.json", "report_generation")
    assert JsonSource.parse("a.json", default_task="phrase_grounding") == JsonSource("a.json", "phrase_grounding")
    with pytest.raises(ValueError, match="Unknown task"):
        JsonSource.parse("a.json:reports")


# --- streaming -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_chars", [1, 2, 3, 7, 64, 1 << 20])
def test_array_reader_across_chunk_boundaries(chunk_chars):
    values = [{"id": "a", "v": 'x, ] [ {"}'}, [1, 2], 1234567, -2.5e10, "s", None, True, {}, {"n": {"m": [0.125]}}]
    text = "  [\n" + ",\n    ".join(json.dumps(v) for v in values) + "\n]  \n"
    assert list(_ArrayReader(io.StringIO(text), chunk_chars, "t")) == values
    assert list(_ArrayReader(io.StringIO(" [ ] "), chunk_chars, "t")) == []


@pytest.mark.parametrize("text", ['[{"a": 1}, {"a": 2}', '[{"a": 1} {"a": 2}]', '[{"a": 1},]', '[{"a": '])
def test_array_reader_rejects_broken_json(text):
    with pytest.raises(ValueError, match="JSON array"):
        list(_ArrayReader(io.StringIO(text), 4, "t"))


def test_iter_json_records_array_and_lines(radvlm_files):
    assert list(iter_json_records(radvlm_files["array"], chunk_chars=5)) == radvlm_files["rows"]
    assert [r["id"] for r in iter_json_records(radvlm_files["jsonl"])] == ["row_0", "row_1"]


# --- images ----------------------------------------------------------------------------------------------------------


def test_16_bit_gradient_stays_a_gradient():
    gradient = np.tile(np.linspace(0, 4095, 256), (4, 1)).astype(np.uint16)
    rgb = to_rgb(Image.fromarray(gradient))
    assert rgb.mode == "RGB"
    row = np.asarray(rgb)[0, :, 0]
    assert row[0] == 0 and row[-1] == 255 and np.all(np.diff(row.astype(int)) >= 0)
    assert len(np.unique(row)) > 200  # not clipped to a few levels
    as_int32 = to_rgb(Image.fromarray(gradient.astype(np.int32)))
    assert np.array_equal(np.asarray(as_int32), np.asarray(rgb))


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "1"])
def test_to_rgb_modes(mode):
    assert to_rgb(Image.new(mode, (8, 6))).mode == "RGB"


def test_target_size_pixel_counts():
    width, height = target_size(2544, 3056, max_pixels=451584, min_pixels=None)
    assert width * height <= 451584 and abs(width / height - 2544 / 3056) < 0.01
    assert target_size(100, 50, max_pixels=451584, min_pixels=None) == (100, 50)
    width, height = target_size(20, 10, max_pixels=None, min_pixels=1024)
    assert width * height >= 1024 and abs(width / height - 2) < 0.1


# --- building datasets -----------------------------------------------------------------------------------------------


def test_sft_keeps_every_row_and_turn(radvlm_files):
    options = ImageOptions(image_root=str(radvlm_files["images"]), max_pixels=40_000)
    sources = [JsonSource(str(radvlm_files["array"])), JsonSource(str(radvlm_files["jsonl"]))]
    dataset, stats = build_dataset(sources, "sft", options, thinking=True, chunk_chars=16)
    assert dataset.features == SFT_FEATURES
    assert stats["read"] == stats["written"] == len(dataset) == 6
    assert dataset["task"] == [
        "report_generation",
        "phrase_grounding",
        "grounded_conversation",
        "classification",
        "anatomical_grounding",
        "anatomical_grounding",
    ]
    conversation = dataset[2]["messages"]
    assert [m["role"] for m in conversation] == ["user", "assistant", "user", "assistant"]
    assert conversation[0]["content"] == [
        {"type": "image", "text": None},
        {"type": "text", "text": "Where is the cardiomegaly? /think"},
    ]
    assert conversation[2]["content"] == [{"type": "text", "text": "Anything else? /think"}]
    assert conversation[1]["content"] == [{"type": "text", "text": "At [0.3, 0.5, 0.7, 0.6]."}]
    for images in dataset["images"]:
        assert len(images) == 1 and images[0].mode == "RGB"
        assert images[0].size[0] * images[0].size[1] <= 40_000
    report_image = dataset[0]["images"][0]
    assert abs(report_image.size[0] / report_image.size[1] - 600 / 800) < 0.02
    gradient = np.asarray(dataset[2]["images"][0])[0, :, 0].astype(int)
    assert gradient[0] == 0 and gradient[-1] == 255 and np.all(np.diff(gradient) >= 0)


def test_grpo_rows_boxes_and_skips(radvlm_files):
    options = ImageOptions(image_root=str(radvlm_files["images"]))
    sources = [JsonSource(str(radvlm_files["array"])), JsonSource(str(radvlm_files["jsonl"]), "anatomical_grounding")]
    dataset, stats = build_dataset(sources, "grpo", options)
    assert dataset.features == GRPO_FEATURES
    assert dataset["id"] == ["mimic-train_0", "mscxr-train1_1", "row_0", "row_1"]
    assert stats["skipped_multi_turn"] == 1 and stats["skipped_task_classification"] == 1
    report, phrase, anatomy, _ = dataset
    assert (
        report["boxes"] == [] and report["solution"] == "No acute findings." and report["task"] == "report_generation"
    )
    assert report["prompt"] == [
        {
            "role": "user",
            "content": [
                {"type": "image", "text": None},
                {"type": "text", "text": "Write a radiology report for this Chest X-ray."},
            ],
        }
    ]
    assert np.allclose(phrase["boxes"], [[0.12, 0.3, 0.45, 0.5], [0.5, 0.31, 0.9, 0.6]])
    assert phrase["solution"] == GROUNDING_ANSWER
    assert anatomy["task"] == "anatomical_grounding" and np.allclose(anatomy["boxes"], [[0.1, 0.2, 0.4, 0.5]])
    assert report["image"].mode == "RGB" and report["image"].size == (600, 800)  # no limit: original size


def test_file_task_overrides_inference_and_unknown_is_skipped(tmp_path, radvlm_files):
    rows = [{"id": "x_0", "image": "b.png", "conversations": _turns("<image>\nDescribe.", "Clear lungs.")}]
    path = tmp_path / "plain.json"
    path.write_text(json.dumps(rows))
    options = ImageOptions(image_root=str(radvlm_files["images"]))
    inferred, stats = build_dataset([JsonSource(str(path))], "grpo", options)
    assert len(inferred) == 0 and stats["skipped_task_unknown"] == 1
    sft, _ = build_dataset([JsonSource(str(path))], "sft", options)
    assert sft["task"] == ["unknown"]
    given, _ = build_dataset([JsonSource(str(path), "report_generation")], "grpo", options, thinking=True)
    assert given["task"] == ["report_generation"]
    assert given[0]["prompt"][0]["content"][1]["text"] == "Describe. /think"


def test_missing_image_names_row_and_path(tmp_path, radvlm_files):
    rows = json.loads(radvlm_files["array"].read_text())
    rows[1]["image"] = "gone/missing.png"
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(rows))
    options = ImageOptions(image_root=str(radvlm_files["images"]))
    with pytest.raises(ImageLoadError, match=r"mscxr-train1_1.*gone/missing\.png"):
        build_dataset([JsonSource(str(path))], "sft", options)
    options.skip_missing_images = True
    dataset, stats = build_dataset([JsonSource(str(path))], "sft", options)
    assert len(dataset) == 3 and stats["skipped_missing_image"] == 1 and "mscxr-train1_1" not in dataset["id"]


def test_unreadable_image_is_a_clear_error(tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"id": "r7", "image": "broken.jpg", "conversations": _turns("<image>Q", "A")}]))
    with pytest.raises(ImageLoadError, match=r"r7.*broken\.jpg"):
        build_dataset([JsonSource(str(path))], "sft", ImageOptions(image_root=str(tmp_path)))


def test_image_prefix_map_and_min_pixels(tmp_path, radvlm_files):
    rows = [{"id": "r", "image": "/cluster/data/b.png", "conversations": _turns("<image>Q", "A")}]
    path = tmp_path / "abs.json"
    path.write_text(json.dumps(rows))
    options = ImageOptions(image_prefix_map=("/cluster/data", str(radvlm_files["images"])), min_pixels=500_000)
    dataset, _ = build_dataset([JsonSource(str(path))], "sft", options)
    width, height = dataset[0]["images"][0].size
    assert width * height >= 500_000 and abs(width / height - 4 / 3) < 0.01


def test_max_rows_stops_early(radvlm_files):
    options = ImageOptions(image_root=str(radvlm_files["images"]))
    dataset, stats = build_dataset([JsonSource(str(radvlm_files["array"]))], "sft", options, max_rows=2)
    assert len(dataset) == 2 and stats["read"] == 2


# --- command line ----------------------------------------------------------------------------------------------------


def _load_script_main():
    spec = importlib.util.spec_from_file_location("prepare_data", REPO / "scripts" / "prepare_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_cli_writes_splits_into_one_datasetdict(tmp_path, radvlm_files):
    main = _load_script_main()
    out = tmp_path / "out"
    common = ["--image_root", str(radvlm_files["images"]), "--output_dir", str(out), "--max_pixels", "451584"]
    main(["--json", str(radvlm_files["array"]), f"{radvlm_files['jsonl']}:anatomical_grounding", *common])
    main(["--json", str(radvlm_files["jsonl"]), "--split", "test", "--thinking", *common])
    saved = load_from_disk(str(out))
    assert sorted(saved) == ["test", "train"]
    assert saved["train"].features == GRPO_FEATURES and len(saved["train"]) == 4
    assert saved["test"]["task"] == ["anatomical_grounding"] * 2
    assert saved["test"][0]["prompt"][0]["content"][1]["text"].endswith(" /think")
    with pytest.raises(FileExistsError, match="--overwrite"):
        main(["--json", str(radvlm_files["jsonl"]), "--split", "test", *common])
    main(["--json", str(radvlm_files["jsonl"]), "--split", "test", "--overwrite", "--schema", "sft", *common])
    assert load_from_disk(str(out))["test"].features == SFT_FEATURES


def test_output_folder_is_checked_before_converting_or_pushing(monkeypatch, tmp_path, radvlm_files):
    """An output folder that cannot take the split fails at once, not after converting every row and pushing."""
    out = tmp_path / "out"
    config = PrepareDataConfig(json=[str(radvlm_files["jsonl"])], image_root=str(radvlm_files["images"]),
                               output_dir=str(out))  # fmt: skip
    prepare_dataset(config)

    def must_not_run(*args, **kwargs):
        raise AssertionError("converted or pushed before the output folder was checked")

    monkeypatch.setattr("radvlm_grpo.data.radvlm_json.build_dataset", must_not_run)
    monkeypatch.setattr("radvlm_grpo.data.radvlm_json.push_dataset", must_not_run)
    with pytest.raises(FileExistsError, match="already holds the split 'train'; pass --overwrite"):
        prepare_dataset(PrepareDataConfig(**{**vars(config), "push_to_hub": "me/cxr"}))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a DatasetDict folder"):
        check_output(tmp_path / "notes", "train")
    with pytest.raises(FileExistsError, match="is a file"):
        check_output(tmp_path / "notes" / "todo.txt", "train")
    check_output(out, "test")  # a new split goes next to the saved one
    check_output(out, "train", overwrite=True)
    check_output(tmp_path / "new" / "folder", "train")


def test_prepare_config_validation(radvlm_files):
    with pytest.raises(ValueError, match="--json"):
        PrepareDataConfig(output_dir="x")
    with pytest.raises(ValueError, match="--output_dir"):
        PrepareDataConfig(json=[str(radvlm_files["array"])])
    config = PrepareDataConfig(json=["a.json"], output_dir="x", image_prefix_map="/old=/new/a=b")
    assert config.image_options().image_prefix_map == ("/old", "/new/a=b")


def test_prepare_dataset_returns_saved_dict(tmp_path, radvlm_files):
    config = PrepareDataConfig(
        json=[str(radvlm_files["array"])],
        image_root=str(radvlm_files["images"]),
        schema="sft",
        output_dir=str(tmp_path / "sft"),
    )
    saved = prepare_dataset(config)
    assert list(saved) == ["train"] and len(saved["train"]) == 4
    assert Counter(saved["train"]["task"])["report_generation"] == 1


def test_invalid_ground_truth_boxes_are_counted(tmp_path, radvlm_files):
    answer = "The bounding box for this observation is [120, 300, 450, 500]."  # 0-1000 grid, not RadVLM's [0, 1]
    rows = [
        {"id": "r", "image": "b.png", "conversations": _turns("<image>\nFind the region corresponding to: x", answer)}
    ]
    path = tmp_path / "grid.json"
    path.write_text(json.dumps(rows))
    dataset, stats = build_dataset(
        [JsonSource(str(path))], "grpo", ImageOptions(image_root=str(radvlm_files["images"]))
    )
    assert dataset["boxes"] == [[[120, 300, 450, 500]]] and stats["rows_with_invalid_boxes"] == 1


def test_parallel_conversion_keeps_rows_order_and_counts(radvlm_files):
    options = ImageOptions(image_root=str(radvlm_files["images"]), max_pixels=40_000)
    sources = [JsonSource(str(radvlm_files["array"])), JsonSource(str(radvlm_files["jsonl"]))]
    serial, serial_stats = build_dataset(sources, "grpo", options)
    parallel, parallel_stats = build_dataset(sources, "grpo", options, num_proc=2)
    assert parallel["id"] == serial["id"] and parallel["boxes"] == serial["boxes"]
    assert parallel_stats == serial_stats and parallel_stats["read"] == 6


def test_parallel_conversion_names_the_missing_image(tmp_path, radvlm_files):
    rows = json.loads(radvlm_files["array"].read_text())
    rows[3]["image"] = "gone.png"
    path = tmp_path / "missing.json"
    path.write_text(json.dumps(rows))
    with pytest.raises(ImageLoadError, match=r"chexpert-train_3.*gone\.png"):
        build_dataset([JsonSource(str(path))], "sft", ImageOptions(image_root=str(radvlm_files["images"])), num_proc=2)


def test_push_to_hub_is_private_gated_and_refused_public(monkeypatch, radvlm_files):
    from radvlm_grpo.publishing.hub import CredentialedDataError

    calls = []

    def fake_push(dataset, repo_id, sources, private=None, allow_public_credentialed=False, **kwargs):
        from radvlm_grpo.publishing.hub import push_dataset

        calls.append((repo_id, list(dataset), private))
        # The real guard runs with a mock API, so nothing reaches the Hub.
        return push_dataset(
            dataset,
            repo_id,
            sources,
            private,
            allow_public_credentialed=allow_public_credentialed,
            api=MagicMock(),
            **kwargs,
        )

    monkeypatch.setattr("radvlm_grpo.data.radvlm_json.push_dataset", fake_push)
    monkeypatch.setattr("datasets.DatasetDict.push_to_hub", lambda self, *a, **kw: None)
    common = {"json": [str(radvlm_files["jsonl"])], "image_root": str(radvlm_files["images"]), "push_to_hub": "me/cxr"}
    assert prepare_dataset(PrepareDataConfig(**common)) is None
    assert calls == [("me/cxr", ["train"], True)]
    with pytest.raises(CredentialedDataError, match="credentialed"):
        prepare_dataset(PrepareDataConfig(**common, hub_public=True, split="test"))
    prepare_dataset(PrepareDataConfig(**common, hub_public=True, allow_public_credentialed=True, split="test"))
    assert calls[-1] == ("me/cxr", ["test"], False)
