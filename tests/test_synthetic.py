"""Synthetic CXR data: schema, determinism, boxes that match both the answer text and the drawn pixels, reports that
name exactly what is drawn."""

from __future__ import annotations

import hashlib
import io
import re

import numpy as np
import pytest
from datasets import load_from_disk
from PIL import Image

from radvlm_grpo.data import synthetic
from radvlm_grpo.data.synthetic import SyntheticConfig, build_examples, build_synthetic_dataset, make_scene, row_rng
from radvlm_grpo.data.synthetic_tasks import (
    NORMAL_REPORT,
    REGIONS,
    REQUIRES,
    to_dataset_dict,
    vocabulary,
    write_report,
)
from radvlm_grpo.vocab.schema import (
    ABNORMALITY_GROUNDING,
    GRPO_FEATURES,
    GRPO_TASKS,
    PHRASE_GROUNDING,
    REPORT_GENERATION,
    SFT_FEATURES,
)

BOX_RE = re.compile(r"\[([-\d.]+), ([-\d.]+), ([-\d.]+), ([-\d.]+)\]")
SMALL = SyntheticConfig(train_size=24, validation_size=8, test_size=8, seed=7)


@pytest.fixture(scope="module")
def examples():
    return build_examples(SMALL)


@pytest.fixture(scope="module")
def grpo(examples):
    return to_dataset_dict(examples, "grpo")


@pytest.fixture(scope="module")
def sft(examples):
    return to_dataset_dict(examples, "sft")


def assert_tight(box, mask: np.ndarray) -> None:
    """The box covers every pixel of the mask and overshoots by less than one 0.01 grid step on each side."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    pixel_box = [xs.min() / w, ys.min() / h, (xs.max() + 1) / w, (ys.max() + 1) / h]
    for i, (b, p) in enumerate(zip(box, pixel_box)):
        slack = p - b if i < 2 else b - p
        assert -1e-9 <= slack < 0.01, (box, pixel_box)


def scenes(n: int, config: SyntheticConfig, seed: int = 0):
    return [make_scene(row_rng(seed, "train", i), config) for i in range(n)]


def test_features_splits_and_tasks(sft, grpo):
    for dataset, features in ((sft, SFT_FEATURES), (grpo, GRPO_FEATURES)):
        assert list(dataset) == ["train", "validation", "test"]
        assert [len(d) for d in dataset.values()] == [24, 8, 8]
        for split in dataset.values():
            assert split.features == features
            assert set(split["task"]) == set(GRPO_TASKS)
    row = sft["train"][0]
    assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    assert row["messages"][0]["content"][0]["type"] == "image"
    assert row["images"][0].mode == "RGB" and row["images"][0].size == (128, 128)
    assert grpo["train"][0]["image"].mode == "RGB"


def test_sft_and_grpo_carry_the_same_rows(sft, grpo):
    for split in ("train", "test"):
        for s, g in zip(sft[split], grpo[split]):
            assert s["id"] == g["id"] and s["task"] == g["task"]
            assert s["messages"][1]["content"][0]["text"] == g["solution"]
            assert s["messages"][0] == g["prompt"][0]


def test_same_seed_identical_other_seed_different(examples):
    again = build_examples(SMALL)
    assert again == examples
    other = build_examples(SyntheticConfig(train_size=24, validation_size=8, test_size=8, seed=8))
    assert [e["image"]["bytes"] for e in other["train"]] != [e["image"]["bytes"] for e in examples["train"]]
    assert [e["answer"] for e in other["train"]] != [e["answer"] for e in examples["train"]]


def test_a_split_does_not_depend_on_the_size_of_another(examples):
    bigger = build_examples(SyntheticConfig(train_size=30, validation_size=8, test_size=8, seed=7))
    assert bigger["validation"] == examples["validation"]
    assert bigger["train"][:24] == examples["train"]


def test_boxes_valid_and_equal_to_the_answer_text(grpo):
    for split in grpo.values():
        for row in split:
            parsed = [[float(v) for v in m] for m in BOX_RE.findall(row["solution"])]
            if row["task"] == REPORT_GENERATION:
                assert row["boxes"] == [] and parsed == []
                continue
            assert len(row["boxes"]) >= 1
            assert np.allclose(parsed, row["boxes"], atol=1e-6)
            for x1, y1, x2, y2 in row["boxes"]:
                assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
            for v in np.ravel(row["boxes"]):
                assert abs(round(float(v), 2) - float(v)) < 1e-6
            for v in BOX_RE.findall(row["solution"])[0]:
                assert len(v.split(".")[-1]) <= 2


def test_splits_disjoint(grpo):
    ids = [set(split["id"]) for split in grpo.values()]
    assert sum(len(s) for s in ids) == len(set.union(*ids)) == 40
    digests = [
        {
            hashlib.sha1(e["bytes"]).hexdigest()
            for e in split.cast_column("image", split.features["image"].__class__(decode=False))["image"]
        }
        for split in grpo.values()
    ]
    assert sum(len(d) for d in digests) == len(set.union(*digests))


def test_rows_are_the_scenes_they_claim(examples):
    """Row i of a split is the scene drawn from row_rng(seed, split, i): same pixels, same report."""
    multi_finding_phrase_rows = 0
    for split, index, example in [(s, i, e) for s in ("train", "test") for i, e in enumerate(examples[s])]:
        scene = make_scene(row_rng(SMALL.seed, split, index), SMALL, require=REQUIRES.get(example["task"]))
        image = np.asarray(Image.open(io.BytesIO(example["image"]["bytes"])))
        assert image.shape == (128, 128, 3)
        assert np.array_equal(image[..., 0], scene.image) and np.array_equal(image[..., 2], scene.image)
        if example["task"] == REPORT_GENERATION:
            assert example["answer"] == write_report(scene.findings)
        elif example["task"] == ABNORMALITY_GROUNDING:
            assert any(f.label and f.label in example["question"] for f in scene.findings)
        elif example["task"] == PHRASE_GROUNDING:
            (finding,) = [f for f in scene.findings if example["question"].endswith(f.phrase)]
            assert finding.boxes == example["boxes"]
            multi_finding_phrase_rows += len(scene.findings) > 1
    assert multi_finding_phrase_rows >= 2  # otherwise the phrase check above could not tell findings apart


def test_report_names_exactly_the_findings_drawn():
    config = SyntheticConfig(p_ett=0.3, p_pacemaker=0.3)
    for scene in scenes(60, config):
        report = write_report(scene.findings)
        kinds = {f.kind for f in scene.findings}
        for finding in scene.findings:
            assert finding.sentence in report
        assert ("nodule" in report) == ("nodule" in kinds)
        assert report.count("nodule") == sum(f.kind == "nodule" for f in scene.findings)
        assert ("consolidation" in report) == ("consolidation" in kinds)
        assert ("No pleural effusion" in report) == ("effusion" not in kinds)
        assert ("enlarged" in report) == ("cardiomegaly" in kinds)
        assert ("endotracheal" in report) == ("ett" in kinds)
        assert ("pacemaker" in report) == ("pacemaker" in kinds)
        assert ("The lungs are clear." in report) == (not kinds & {"nodule", "consolidation"})
        if not kinds:
            assert report == NORMAL_REPORT
        # Metal is drawn only when a device is reported.
        assert (scene.image >= 235).any() == bool(kinds & {"ett", "pacemaker"})


def test_boxes_cover_exactly_the_drawn_lesions():
    """Without noise, a nodule's box is the tight 0.01-grid box of its bright pixels."""
    config = SyntheticConfig(
        noise_std=0.0, mottle_std=0.0, ribs=False, p_ett=0.0, p_pacemaker=0.0, p_nodule=0.8, p_consolidation=0.0
    )
    checked = 0
    for scene in scenes(20, config):
        for finding in scene.findings:
            if finding.kind != "nodule":
                continue
            x1, y1, x2, y2 = finding.boxes[0]
            window = np.zeros_like(scene.image, dtype=bool)
            window[
                max(0, int((y1 - 0.05) * 128)) : int((y2 + 0.05) * 128),
                max(0, int((x1 - 0.05) * 128)) : int((x2 + 0.05) * 128),
            ] = True
            assert_tight(finding.boxes[0], (scene.image == 215) & window)
            checked += 1
    assert checked >= 10


def _crop(image: np.ndarray, box, margin: float = 0.0) -> tuple[slice, slice]:
    x1, y1, x2, y2 = (np.array(box) + [-margin, -margin, margin, margin]).clip(0, 1) * image.shape[0]
    return slice(int(y1), int(np.ceil(y2))), slice(int(x1), int(np.ceil(x2)))


def test_findings_are_brighter_than_the_lung_around_them():
    config = SyntheticConfig(p_ett=0.0, p_pacemaker=0.0, p_cardiomegaly=0.0, p_nodule=0.6, p_consolidation=0.6)
    checked = 0
    for scene in scenes(30, config):
        for finding in scene.findings:
            if finding.kind not in ("nodule", "consolidation"):
                continue
            inside = scene.image[_crop(scene.image, finding.boxes[0])].astype(float)
            lung = scene.image[_crop(scene.image, scene.regions[f"{finding.side} lung"])].astype(float)
            dark_lung = np.median(lung[lung < 90])
            assert inside.mean() > dark_lung + 50, (finding, inside.mean(), dark_lung)
            checked += 1
    assert checked >= 15


def _overlap(a, b) -> float:
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def test_effusion_fills_the_lung_base_and_cardiomegaly_widens_the_heart():
    config = SyntheticConfig(p_effusion=0.5, p_cardiomegaly=0.5, p_ett=0.0, p_pacemaker=0.0)
    normal, enlarged = [], []
    for scene in scenes(40, config):
        heart = scene.regions["cardiac silhouette"]
        kinds = {f.kind for f in scene.findings}
        (enlarged if "cardiomegaly" in kinds else normal).append(heart[2] - heart[0])
        for finding in scene.findings:
            if finding.kind != "effusion":
                continue
            assert len(finding.boxes) == (1 if finding.side else 2)
            for mask, box in zip(finding.masks, finding.boxes):
                assert_tight(box, mask)
                assert np.median(scene.image[mask]) > 140  # fluid is bright where the lung was dark
                # Fluid at a lung base fills its costophrenic angle (the blunted angle of an upright film).
                side = "right" if box[0] < 0.5 else "left"
                lung, angle = scene.regions[f"{side} lung"], scene.regions[f"{side} costophrenic angle"]
                assert abs(box[3] - lung[3]) <= 0.02 and box[1] > (lung[1] + lung[3]) / 2
                assert _overlap(box, angle) > 0.5 * (angle[2] - angle[0]) * (angle[3] - angle[1])
    assert normal and enlarged and max(normal) < min(enlarged)


def test_grounding_rows_always_have_a_target():
    config = SyntheticConfig(train_size=16, validation_size=0, test_size=0, p_consolidation=0.0, p_nodule=0.0,
                             p_effusion=0.0, p_cardiomegaly=0.05, p_ett=0.05, p_pacemaker=0.0)  # fmt: skip
    dataset = build_synthetic_dataset(config, "grpo")
    assert list(dataset) == ["train"]  # empty splits are left out (datasets cannot load them back)
    rows = dataset["train"]
    for row in rows:
        if row["task"] in (ABNORMALITY_GROUNDING, PHRASE_GROUNDING):
            assert row["boxes"]
    with pytest.raises(ValueError):
        build_examples(SyntheticConfig(train_size=4, validation_size=0, test_size=0, tasks=("classification",)))


def test_thinking_suffix():
    config = SyntheticConfig(train_size=4, validation_size=0, test_size=0, thinking=True)
    assert all(e["question"].endswith(" /think") for e in build_examples(config)["train"])


def test_cli_saves_both_schemas(tmp_path):
    synthetic.main([str(tmp_path), "--schema", "both", "--train-size", "4", "--validation-size", "2", "--test-size", "2",
                    "--image-size", "64", "--seed", "3", "--no-ribs"])  # fmt: skip
    sft, grpo = load_from_disk(str(tmp_path / "sft")), load_from_disk(str(tmp_path / "grpo"))
    assert sft["train"].features == SFT_FEATURES and grpo["test"].features == GRPO_FEATURES
    assert grpo["train"][0]["image"].size == (64, 64)
    assert len(sft["validation"]) == 2


def test_vocabulary_covers_every_text_and_regions_are_all_drawn():
    words = set(vocabulary())
    for scene in scenes(40, SyntheticConfig(p_ett=0.3, p_pacemaker=0.3)):
        assert set(scene.regions) == set(REGIONS)
        for finding in scene.findings:
            assert finding.phrase in words and finding.sentence in words
            assert finding.label is None or finding.label in words


def test_grpo_train_offset_gives_grpo_images_the_sft_split_does_not_hold(tmp_path, examples):
    from datasets import Image as ImageFeature
    from datasets import load_from_disk

    from radvlm_grpo.data.synthetic import main

    main([str(tmp_path), "--schema", "both", "--train-size", "24", "--validation-size", "8", "--test-size", "8",
          "--seed", "7", "--grpo-train-offset", "24"])  # fmt: skip
    sft_data, grpo_data = load_from_disk(str(tmp_path / "sft")), load_from_disk(str(tmp_path / "grpo"))
    grpo_train = grpo_data["train"].cast_column("image", ImageFeature(decode=False))
    assert sft_data["train"]["id"] == [row["id"] for row in examples["train"]]  # the SFT split does not move
    sft_images = {row["image"]["bytes"] for row in examples["train"]}
    assert len(grpo_train) == 24 and not sft_images & {row["image"]["bytes"] for row in grpo_train}
    # GRPO's train split is rows 24-47 of the same train stream; validation and test are the SFT split's own.
    longer = build_examples(SyntheticConfig(train_size=48, validation_size=0, test_size=0, seed=7))["train"]
    assert grpo_train["id"] == [row["id"] for row in longer[24:]]
    assert [row["image"]["bytes"] for row in grpo_train] == [row["image"]["bytes"] for row in longer[24:]]
    for split in ("validation", "test"):
        assert grpo_data[split]["id"] == sft_data[split]["id"] == [row["id"] for row in examples[split]]
