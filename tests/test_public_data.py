"""The credential-free data path: IU X-ray / Open-i and NIH ChestX-ray14 converters on fixtures that mimic each
published layout, patient/study splits, the no-derivatives licence guard, LoRA merging, and an evaluation with an
out-of-distribution test set on the tiny model."""

import csv
import io
import json
import runpy
import shutil
import sys
import zipfile
from collections import Counter
from pathlib import Path
from unittest.mock import MagicMock

import pytest
from datasets import Dataset, Features, Value
from huggingface_hub import DatasetCard, ModelCard
from PIL import Image

from radvlm_grpo.data.nih import convert_nih, load_nih_files, normalise_box, parse_bbox_row
from radvlm_grpo.data.open_i import convert_open_i, load_open_i_rows
from radvlm_grpo.data.prepare_public import PreparePublicDataConfig, prepare_public_dataset
from radvlm_grpo.data.public import SPLITS, assign_split
from radvlm_grpo.data.radvlm_json import ImageLoadError
from radvlm_grpo.publishing.hub import NoDerivativesError, push_dataset
from radvlm_grpo.vocab.prompts import LOCATION_QUESTIONS, REPORT_QUESTIONS
from radvlm_grpo.vocab.schema import ABNORMALITY_GROUNDING, REPORT_GENERATION

REPO_ROOT = Path(__file__).resolve().parents[1]


def rounded(boxes: list[list[float]]) -> list[list[float]]:
    """The stored float32 boxes back to the two decimals they were written with."""
    return [[round(v, 4) for v in box] for box in boxes]


def encoded(size: tuple[int, int], fmt: str, shade: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", size, shade).save(buffer, format=fmt)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------------------------------
# Fixtures in the published layouts
# ---------------------------------------------------------------------------------------------------------------------

# ykumards/open-i: one row per study, report sections as text, the two views as JPEG bytes (either may be missing).
OPEN_I_FEATURES = Features(
    {
        "uid": Value("int64"),
        "MeSH": Value("string"),
        "Problems": Value("string"),
        "image": Value("string"),
        "indication": Value("string"),
        "comparison": Value("string"),
        "findings": Value("string"),
        "impression": Value("string"),
        "img_frontal": Value("binary"),
        "img_lateral": Value("binary"),
    }
)


def open_i_dataset() -> Dataset:
    jpeg = encoded((64, 80), "JPEG")
    studies = [
        (1, "The heart is normal.\n  The lungs are clear.", "Normal chest x-XXXX.", jpeg, jpeg),
        (2, None, "No acute cardiopulmonary disease.", jpeg, jpeg),  # findings missing: impression
        (3, None, None, jpeg, jpeg),  # neither: dropped
        (4, "Small left effusion.", None, None, jpeg),  # lateral only
        (5, "Borderline cardiomegaly.", "Stable.", jpeg, None),  # no lateral
        *((uid, f"Finding number {uid}.", None, jpeg, jpeg) for uid in range(6, 30)),
    ]
    rows = [
        {
            "uid": uid,
            "MeSH": "normal",
            "Problems": "normal",
            "image": "Xray Chest PA and Lateral",
            "indication": "Chest pain.",
            "comparison": None,
            "findings": findings,
            "impression": impression,
            "img_frontal": frontal,
            "img_lateral": lateral,
        }
        for uid, findings, impression, frontal, lateral in studies
    ]
    return Dataset.from_list(rows, features=OPEN_I_FEATURES)


BBOX_HEADER = ["Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "", "", ""]  # NIH's header, split by csv
# (image, label, x, y, w, h) in pixels of the 1024 x 1024 image; two Effusion boxes on one image.
BOXES = [
    ("00000005_000.png", "Effusion", 100, 200, 300, 400),
    ("00000005_000.png", "Effusion", 600, 200, 300, 400),
    ("00000005_000.png", "Mass", 512, 512, 102.4, 51.2),
    ("00000005_001.png", "Infiltrate", 0, 0, 1024, 512),
    ("00000007_000.png", "Cardiomegaly", 300, 500, 400, 300),
    *((f"{p:08d}_000.png", "Nodule", 10 * p, 20, 50, 60) for p in range(10, 40)),
]


def nih_folder(root: Path, side: int = 1024) -> Path:
    """NIH's files as the Hub mirror lays them out: the two CSVs and the images, some in a zip archive; ``side``
    below 1024 makes a resized copy (the boxes stay in the 1024-pixel frame, as NIH publishes them)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "BBox_List_2017.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(BBOX_HEADER)
        writer.writerows([*row, "", "", ""] for row in BOXES)
    images = sorted({row[0] for row in BOXES})
    with open(root / "Data_Entry_2017_v2020.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Image Index", "Finding Labels", "Follow-up #", "Patient ID", "Patient Age"])
        writer.writerows([name, "Effusion", int(name[9:12]), int(name[:8]), 50] for name in images)
    png = encoded((side, side), "PNG")
    (root / "images_001" / "images").mkdir(parents=True)
    (root / "images_001" / "images" / images[0]).write_bytes(png)
    (root / "images").mkdir()
    with zipfile.ZipFile(root / "images" / "images_002.zip", "w") as archive:
        for name in images[1:]:
            archive.writestr(f"images/{name}", png)
    return root


def open_i_raw_folder(root: Path) -> Path:
    """The raw Open-i layout (Kaggle copy): reports and projections CSVs, PNG files."""
    (root / "images" / "images_normalized").mkdir(parents=True)
    with open(root / "indiana_reports.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"])
        writer.writerow([1, "normal", "normal", "Xray Chest PA and Lateral", "", "", "Clear lungs.", "Normal."])
        writer.writerow([2, "normal", "normal", "Xray Chest PA and Lateral", "", "", "", "No acute disease."])
    with open(root / "indiana_projections.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "filename", "projection"])
        for uid in (1, 2):
            for k, projection in ((1001, "Frontal"), (2001, "Lateral")):
                name = f"{uid}_IM-000{uid}-{k}.dcm.png"
                writer.writerow([uid, name, projection])
                (root / "images" / "images_normalized" / name).write_bytes(encoded((48, 48), "PNG"))
    return root


# ---------------------------------------------------------------------------------------------------------------------
# Open-i
# ---------------------------------------------------------------------------------------------------------------------


def test_open_i_findings_else_impression_frontal_only_and_counts(tmp_path):
    stats = Counter()
    out = convert_open_i(open_i_dataset(), schema="both", cache_dir=str(tmp_path), stats=stats)
    grpo = {row["id"]: (split, row) for split, part in out["grpo"].items() for row in part}
    assert set(out["grpo"]) == set(out["sft"]) and set(out["grpo"]) <= set(SPLITS)
    assert "openi-1-frontal" in grpo and not any("lateral" in i for i in grpo)
    assert (
        grpo["openi-1-frontal"][1]["solution"] == "The heart is normal. The lungs are clear."
    )  # whitespace collapsed
    assert grpo["openi-2-frontal"][1]["solution"] == "No acute cardiopulmonary disease."  # impression fallback
    assert not any(i.startswith(("openi-3-", "openi-4-")) for i in grpo)  # no report; no frontal image
    assert stats["studies_read"] == 29 and stats["studies_dropped_no_findings_or_impression"] == 1
    assert stats["studies_without_frontal_image"] == 1 and stats["lateral_images_dropped"] == 27
    assert stats["report_from_impression"] == 1 and sum(stats[f"rows_{s}"] for s in SPLITS) == len(grpo) == 27
    _, row = grpo["openi-5-frontal"]
    assert row["task"] == REPORT_GENERATION and row["boxes"] == [] and row["image"].mode == "RGB"
    content = row["prompt"][0]["content"]
    assert content[0]["type"] == "image" and content[1]["text"] in REPORT_QUESTIONS
    sft = {row["id"]: row for part in out["sft"].values() for row in part}
    messages = sft["openi-5-frontal"]["messages"]
    assert messages[0] == row["prompt"][0] and messages[1]["content"][0]["text"] == "Borderline cardiomegaly."
    assert len(sft["openi-5-frontal"]["images"]) == 1


def test_open_i_lateral_views_keep_their_study_split(tmp_path):
    frontal = convert_open_i(open_i_dataset(), schema="grpo", cache_dir=str(tmp_path))["grpo"]
    both = convert_open_i(open_i_dataset(), schema="grpo", include_lateral=True, cache_dir=str(tmp_path))["grpo"]
    lateral = convert_open_i(open_i_dataset(), schema="grpo", lateral_only=True, cache_dir=str(tmp_path))["grpo"]
    split_of = {row_id: split for split, part in both.items() for row_id in part["id"]}
    assert {i for i in split_of if i.endswith("-lateral")} == {f"openi-{u}-lateral" for u in (1, 2, 4, *range(6, 30))}
    for split, part in frontal.items():  # the same rows land in the same split whatever else is written
        assert all(split_of[i] == split for i in part["id"])
    for row_id, split in split_of.items():
        assert split_of.get(row_id.replace("-lateral", "-frontal"), split) == split  # both views of a study together
    assert all(i.endswith("-lateral") for part in lateral.values() for i in part["id"])


def test_open_i_raw_layout(tmp_path):
    rows = load_open_i_rows("ykumards/open-i", str(open_i_raw_folder(tmp_path / "raw")))
    stats = Counter()
    out = convert_open_i(rows, schema="grpo", cache_dir=str(tmp_path), stats=stats)["grpo"]
    solutions = {row["id"]: row["solution"] for part in out.values() for row in part}
    assert solutions == {"openi-1-frontal": "Clear lungs.", "openi-2-frontal": "No acute disease."}
    assert stats["lateral_images_dropped"] == 2


def test_open_i_local_copy_of_the_hub_dataset(tmp_path):
    """A saved copy of ykumards/open-i loads as it is: its "image" column is the exam's description, not a path."""
    open_i_dataset().save_to_disk(str(tmp_path / "copy"))
    rows = load_open_i_rows("ykumards/open-i", str(tmp_path / "copy"))
    assert len(rows) == 29 and rows[0]["image"] == "Xray Chest PA and Lateral"


# ---------------------------------------------------------------------------------------------------------------------
# NIH ChestX-ray14
# ---------------------------------------------------------------------------------------------------------------------


def test_bbox_rows_and_normalisation():
    row = dict(zip(BBOX_HEADER, ["00000005_000.png", "Effusion", "100", "200", "300", "400", "", "", ""]))
    assert parse_bbox_row(row) == ("00000005_000.png", "Effusion", (100.0, 200.0, 300.0, 400.0))
    assert normalise_box((100, 200, 300, 400), 1024, 1024) == [0.1, 0.2, 0.39, 0.59]
    assert normalise_box((900, 0, 300, 50), 1024, 1024) == [0.88, 0.0, 1.0, 0.05]  # clipped to the image
    assert normalise_box((100, 200, 300, 400), 2048, 1024) == [0.05, 0.2, 0.2, 0.59]  # by the image's own size
    with pytest.raises(ValueError, match="BBox_List_2017"):
        parse_bbox_row({"Image Index": "x.png"})


def test_nih_boxes_become_grounding_rows_split_by_patient(tmp_path):
    source = load_nih_files("unused/hub-id", str(nih_folder(tmp_path / "nih")), tmp_path)
    assert len(source.images) == len({b[0] for b in BOXES})  # PNG folder and zip archive both found
    stats = Counter()
    options = PreparePublicDataConfig(dataset="nih", output_dir="x", max_pixels=128 * 128).image_options()
    out = convert_nih(
        source.bbox_rows, source.images, source.patient_ids, "both", options, cache_dir=str(tmp_path), stats=stats
    )
    rows = {row["id"]: (split, row) for split, part in out["grpo"].items() for row in part}
    split, effusion = rows["nih-00000005_000-pleural-effusion"]
    # Both boxes of the label in one row, normalised by the 1024-pixel source, not the 128-pixel stored image.
    assert rounded(effusion["boxes"]) == [[0.1, 0.2, 0.39, 0.59], [0.59, 0.2, 0.88, 0.59]]
    assert "[0.1, 0.2, 0.39, 0.59] and [0.59, 0.2, 0.88, 0.59]" in effusion["solution"]
    assert "pleural effusion" in effusion["solution"] and effusion["task"] == ABNORMALITY_GROUNDING
    question = effusion["prompt"][0]["content"][1]["text"]
    assert any(question == q.format("pleural effusion") for q in LOCATION_QUESTIONS)
    assert effusion["image"].size == (128, 128)
    assert rounded(rows["nih-00000005_000-mass"][1]["boxes"]) == [[0.5, 0.5, 0.6, 0.55]]
    assert "infiltration" in rows["nih-00000005_001-infiltration"][1]["solution"]
    # Patient 5's two images are in one split.
    assert rows["nih-00000005_001-infiltration"][0] == split
    assert stats["boxes_read"] == len(BOXES) and sum(stats[f"rows_{s}"] for s in SPLITS) == len(rows) == len(BOXES) - 1
    sft = {row["id"]: row for part in out["sft"].values() for row in part}
    assert sft["nih-00000005_000-pleural-effusion"]["messages"][1]["content"][0]["text"] == effusion["solution"]


def nih_boxes(tmp_path: Path, side: int, stats: Counter | None = None) -> dict[str, tuple[list, str]]:
    """``{row id: (boxes, solution)}`` of the fixture's NIH rows, the images being ``side`` pixels wide."""
    source = load_nih_files("unused/hub-id", str(nih_folder(tmp_path / f"nih{side}", side)), tmp_path)
    small = PreparePublicDataConfig(dataset="nih", output_dir="x", max_pixels=32 * 32).image_options()
    out = convert_nih(source.bbox_rows, source.images, source.patient_ids, "grpo", small, cache_dir=str(tmp_path),
                      stats=stats)["grpo"]  # fmt: skip
    return {row["id"]: (rounded(row["boxes"]), row["solution"]) for part in out.values() for row in part}


def test_nih_boxes_do_not_depend_on_the_size_of_the_image_files(tmp_path):
    """BBox_List_2017.csv is in the 1024-pixel frame: a 512-pixel copy of the images gives the same rows (the boxes
    were once divided by the file's size, doubling every coordinate and dropping the boxes that left the image)."""
    full, stats = nih_boxes(tmp_path, 1024), Counter()
    half = nih_boxes(tmp_path, 512, stats)
    assert half == full and len(half) == len(BOXES) - 1
    assert half["nih-00000005_000-pleural-effusion"][0] == [[0.1, 0.2, 0.39, 0.59], [0.59, 0.2, 0.88, 0.59]]
    assert stats["images_not_1024x1024"] == len({b[0] for b in BOXES})
    assert not stats["boxes_outside_the_image"] and not stats["boxes_dropped_empty_after_rounding"]


def test_nih_boxes_outside_the_image_are_counted_and_named(tmp_path, caplog):
    rows = [
        dict(zip(BBOX_HEADER, ["00000005_000.png", label, *map(str, box)]))
        for label, box in (("Nodule", (900, 10, 300, 50)), ("Mass", (1100, 10, 50, 50)), ("Mass", (10, 10, 50, 50)))
    ]
    stats = Counter()
    with caplog.at_level("WARNING", logger="radvlm_grpo.data.nih"):
        out = convert_nih(rows, {"00000005_000.png": encoded((64, 64), "PNG")}, schema="grpo",
                          cache_dir=str(tmp_path), stats=stats)["grpo"]  # fmt: skip
    boxes = {row["id"]: rounded(row["boxes"]) for part in out.values() for row in part}
    assert boxes == {
        "nih-00000005_000-nodule": [[0.88, 0.01, 1.0, 0.06]],
        "nih-00000005_000-mass": [[0.01, 0.01, 0.06, 0.06]],
    }
    assert stats["boxes_outside_the_image"] == 2 and stats["boxes_dropped_empty_after_rounding"] == 1
    assert "'nih-00000005_000-nodule'" in caplog.text and "[1100.0, 10.0, 50.0, 50.0]" in caplog.text


def test_splits_are_deterministic_seeded_and_patient_disjoint(tmp_path):
    source = load_nih_files("unused/hub-id", str(nih_folder(tmp_path / "nih")), tmp_path)

    small = PreparePublicDataConfig(dataset="nih", output_dir="x", max_pixels=32 * 32).image_options()

    def patients_by_split(seed):
        out = convert_nih(source.bbox_rows, source.images, source.patient_ids, "grpo", small, seed=seed,
                          cache_dir=str(tmp_path))["grpo"]  # fmt: skip
        return {split: {i.split("-")[1].split("_")[0] for i in part["id"]} for split, part in out.items()}

    first, again, other = patients_by_split(42), patients_by_split(42), patients_by_split(7)
    assert first == again and first != other
    assert all(first[a].isdisjoint(first[b]) for a in first for b in first if a < b)
    counts = Counter(assign_split(str(k), 42) for k in range(20_000))
    assert abs(counts["train"] / 20_000 - 0.8) < 0.02 and abs(counts["test"] / 20_000 - 0.1) < 0.02
    assert assign_split("17", 42, (0.0, 0.0, 1.0)) == "test"
    with pytest.raises(ValueError, match="sum"):
        assign_split("17", 42, (0.5, 0.5, 0.5))


# ---------------------------------------------------------------------------------------------------------------------
# The command line, the dataset cards and the licence guard
# ---------------------------------------------------------------------------------------------------------------------


def prepare(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["scripts/prepare_public_data.py", *args])
    runpy.run_path(str(REPO_ROOT / "scripts/prepare_public_data.py"), run_name="__main__")


def test_cli_writes_both_schemas_and_a_card_with_the_licence(monkeypatch, tmp_path):
    out = tmp_path / "public" / "nih"
    prepare(monkeypatch, "--dataset", "nih", "--data_dir", str(nih_folder(tmp_path / "raw")), "--output_dir",
            str(out), "--max_pixels", "4096")  # fmt: skip
    assert (out / "grpo" / "dataset_dict.json").is_file() and (out / "sft" / "dataset_dict.json").is_file()
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == "cc0-1.0" and "cite Wang et al." in card.text and "CVPR 2017" in card.text
    with pytest.raises(FileExistsError, match="--overwrite"):
        prepare(monkeypatch, "--dataset", "nih", "--data_dir", str(tmp_path / "raw"), "--output_dir", str(out))

    openi = tmp_path / "public" / "openi"
    prepare(monkeypatch, "--dataset", "open-i", "--data_dir", str(open_i_raw_folder(tmp_path / "iu")),
            "--output_dir", str(openi), "--schema", "grpo")  # fmt: skip
    assert (openi / "grpo").is_dir() and not (openi / "sft").exists()
    card = DatasetCard.load(openi / "README.md")
    assert card.data.license == "cc-by-nc-nd-4.0" and "never pushed" in card.text


def test_bad_public_inputs_name_the_file_and_the_fix(tmp_path):
    """Missing inputs fail before converting; an unreadable image fails with its row and path, not as datasets'
    generic "An error occurred while generating the dataset" with the useful line buried in the chain."""

    def convert(dataset: str, data_dir: Path) -> None:
        out = tmp_path / "out" / data_dir.name
        prepare_public_dataset(PreparePublicDataConfig(dataset=dataset, data_dir=str(data_dir), output_dir=str(out)))

    with pytest.raises(FileNotFoundError, match="nowhere does not exist.*leave --data_dir out"):
        convert("nih", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="No BBox_List_2017.csv under .*Download it"):
        convert("nih", Path(tmp_path))
    nih = nih_folder(tmp_path / "nih")
    first = sorted({b[0] for b in BOXES})[0]
    (nih / "images_001" / "images" / first).write_bytes(b"<html>Not Found</html>")
    with pytest.raises(ImageLoadError, match=f"Row 'nih-{first[:-4]}-.*cannot read its image.*--skip_missing"):
        convert("nih", nih)
    shutil.rmtree(nih / "images")  # the archive not downloaded
    with pytest.raises(FileNotFoundError, match=f"{len({b[0] for b in BOXES}) - 1} of the .*--skip_missing_images"):
        convert("nih", nih)

    openi = open_i_raw_folder(tmp_path / "openi")
    (openi / "images" / "images_normalized" / "1_IM-0001-1001.dcm.png").write_bytes(b"")
    with pytest.raises(ImageLoadError, match="Row 'openi-1-frontal': cannot read its image"):
        convert("open-i", openi)
    shutil.rmtree(openi / "images")
    with pytest.raises(FileNotFoundError, match="None of the 4 images listed in indiana_projections.csv"):
        convert("open-i", openi)
    (openi / "indiana_projections.csv").unlink()
    with pytest.raises(FileNotFoundError, match="indiana_projections.csv not found: the raw Open-i layout"):
        convert("open-i", openi)


def test_licence_guard_refuses_to_push_converted_open_i_images(tmp_path):
    converted = convert_open_i(open_i_dataset(), schema="grpo", cache_dir=str(tmp_path))["grpo"]
    for source in ("open-i", "ykumards/open-i", "IU X-ray"):
        for private in (True, False):
            api = MagicMock()
            with pytest.raises(NoDerivativesError, match="CC BY-NC-ND 4.0"):
                push_dataset(converted, "me/iu-xray", sources=[source], private=private, api=api)
            assert api.method_calls == []  # nothing reached the Hub
    with pytest.raises(NoDerivativesError, match="no derivatives"):
        PreparePublicDataConfig(dataset="open-i", output_dir=str(tmp_path / "x"), push_to_hub="me/iu-xray")


def test_nih_rows_may_be_pushed_with_their_terms(tmp_path):
    source = load_nih_files("unused/hub-id", str(nih_folder(tmp_path / "nih")), tmp_path)
    small = PreparePublicDataConfig(dataset="nih", output_dir="x", max_pixels=32 * 32).image_options()
    grpo = convert_nih(source.bbox_rows, source.images, source.patient_ids, "grpo", small, cache_dir=str(tmp_path))
    grpo = grpo["grpo"]
    api = MagicMock()
    sent = {}
    api.create_commit.side_effect = lambda repo, ops, **kw: sent.update(
        {op.path_in_repo: Path(op.path_or_fileobj).read_text() for op in ops if op.path_in_repo == "README.md"}
    )
    push_dataset(grpo, "me/nih-boxes", sources=["nih-chestxray14"], private=False, api=api)
    assert api.create_repo.call_args.kwargs["private"] is False
    api.update_repo_settings.assert_not_called()  # public data: no gate
    card = DatasetCard(sent["README.md"])
    assert card.data.license == "cc0-1.0" and "acknowledge the NIH Clinical Center" in card.text


# ---------------------------------------------------------------------------------------------------------------------
# LoRA merge and out-of-distribution evaluation
# ---------------------------------------------------------------------------------------------------------------------


def test_merge_lora_gives_a_plain_checkpoint_with_the_adapters_outputs(tmp_path, tiny_model_dir):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from radvlm_grpo.models.loading import merge_lora

    base = AutoModelForImageTextToText.from_pretrained(tiny_model_dir)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    merged_dir = merge_lora(tmp_path / "adapter", tmp_path / "merged", dtype="float32")
    assert not (merged_dir / "adapter_config.json").exists() and (merged_dir / "tokenizer_config.json").is_file()
    merged = AutoModelForImageTextToText.from_pretrained(merged_dir)
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        assert torch.allclose(lora(input_ids=ids).logits, merged(input_ids=ids).logits, atol=1e-4)
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        merge_lora(tiny_model_dir, tmp_path / "nothing")


def test_evaluation_adds_an_out_of_distribution_test_set(monkeypatch, tmp_path, tiny_model_dir, synthetic_dir):
    ood_dir = tmp_path / "public" / "nih"
    prepare(monkeypatch, "--dataset", "nih", "--data_dir", str(nih_folder(tmp_path / "raw")), "--output_dir",
            str(ood_dir), "--max_pixels", "16384", "--split_ratios", "0", "0", "1")  # fmt: skip
    out = tmp_path / "eval"
    monkeypatch.setattr(sys, "argv", [
        "scripts/evaluate.py", "--model_name_or_path", str(tiny_model_dir), "--dataset_name",
        str(synthetic_dir / "grpo"), "--output_dir", str(out), "--max_new_tokens", "4", "--batch_size", "4",
        "--n_bootstrap", "50", "--backend", "transformers", "--model_label", "tiny", "--max_samples", "3",
        "--skip_metrics", "bertscore", "chexbert", "radgraph", "radcliq", "--num_box_figures", "1",
        "--ood_dataset_name", str(ood_dir), "--ood_split", "test",
    ])  # fmt: skip
    runpy.run_path(str(REPO_ROOT / "scripts/evaluate.py"), run_name="__main__")

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n"] == 3 and metrics["dataset"] == str(synthetic_dir / "grpo")
    ood = metrics["out_of_distribution"]
    assert (ood["dataset"], ood["dataset_config"], ood["split"], ood["n"]) == (str(ood_dir), "grpo", "test", 3)
    assert set(ood["metrics"]) == {"abnormality_grounding/nih"} and ood["generation"]["rows"] == 3
    predictions = (out / "ood" / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 3 and all(json.loads(p)["id"].startswith("nih-") for p in predictions)
    assert len((out / "ood" / "samples.jsonl").read_text().splitlines()) == 3
    assert (out / "ood" / "figures" / "grounding_boxes.png").is_file()

    results = (out / "results.md").read_text()
    in_part, ood_part = results.split("## Out of distribution")
    assert "| RadVLM+RL | 8 | 29.9 |" in in_part and "RadVLM+RL" not in ood_part
    assert "Abnorm. (NIH ChestX-ray14)" in ood_part and str(ood_dir) in ood_part

    card = ModelCard.load(out / "model_card.md")
    assert "### Out of distribution" in card.text and f"out of distribution (`{ood_dir}`)" in card.text
    assert "![grounding_boxes (out of distribution)](ood/figures/grounding_boxes.png)" in card.text
    ood_examples = card.text.split("#### Held-out examples (out of distribution)")[1]
    assert "| ![example 1](ood/figures/example_1.png) | **abnormality_grounding (NIH ChestX-ray14)**: " in ood_examples
    assert "(out of distribution)](ood/figures/example_1.png)" not in card.text  # in the table, not on its own
    configs = {r.dataset_config for r in card.data.eval_results}
    assert "abnormality_grounding/nih (out of distribution)" in configs and "report_generation" in configs
