"""load_recipe_dataset: save_to_disk folders, data files, Hub ids, missing paths; select_tasks."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict, Features, Image, List, Value
from PIL import Image as PILImage

from radvlm_grpo.data import loading
from radvlm_grpo.data.loading import DatasetImageError, load_recipe_dataset, looks_local, select_tasks

ROWS = {
    "solution": ["a", "b", "c", "d"],
    "task": ["report_generation", "phrase_grounding", "report_generation", "anatomical_grounding"],
    "id": ["r0", "r1", "r2", "r3"],
}


@pytest.fixture
def dataset() -> Dataset:
    return Dataset.from_dict(ROWS)


def test_load_datasetdict_folder(tmp_path, dataset):
    DatasetDict({"train": dataset, "test": dataset.select([0])}).save_to_disk(str(tmp_path / "dd"))
    loaded = load_recipe_dataset(str(tmp_path / "dd"))
    assert sorted(loaded) == ["test", "train"] and loaded["train"]["id"] == ROWS["id"]
    only_test = load_recipe_dataset(str(tmp_path / "dd"), splits="test")
    assert list(only_test) == ["test"]
    with pytest.raises(KeyError, match="validation"):
        load_recipe_dataset(str(tmp_path / "dd"), splits=["train", "validation"])


def test_local_config_is_a_subfolder(tmp_path, dataset):
    DatasetDict({"train": dataset}).save_to_disk(str(tmp_path / "out" / "grpo"))
    DatasetDict({"train": dataset.select([0])}).save_to_disk(str(tmp_path / "out" / "sft"))
    assert len(load_recipe_dataset(str(tmp_path / "out"), config="grpo")["train"]) == 4
    assert len(load_recipe_dataset(str(tmp_path / "out"), config="sft")["train"]) == 1


def test_load_dataset_folder_becomes_train_split(tmp_path, dataset):
    dataset.save_to_disk(str(tmp_path / "ds"))
    loaded = load_recipe_dataset(str(tmp_path / "ds"))
    assert list(loaded) == ["train"] and loaded["train"]["task"] == ROWS["task"]


def test_load_data_files(tmp_path):
    rows = [dict(zip(ROWS, values)) for values in zip(*ROWS.values())]
    jsonl = tmp_path / "rows.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in rows))
    assert load_recipe_dataset(str(jsonl))["train"]["id"] == ROWS["id"]
    folder = tmp_path / "files"
    folder.mkdir()
    Dataset.from_dict(ROWS).to_parquet(str(folder / "train.parquet"))
    Dataset.from_dict(ROWS).select([1]).to_parquet(str(folder / "test.parquet"))
    loaded = load_recipe_dataset(str(folder))
    assert sorted(loaded) == ["test", "train"] and loaded["test"]["id"] == ["r1"]


@pytest.mark.parametrize("path", ["/no/such/dir", "./data/missing", "~/missing_ds", "data/radvlm/grpo", "x.jsonl"])
def test_missing_local_path_is_a_clear_error(path):
    assert looks_local(path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_recipe_dataset(path)


def test_existing_folder_prefix_marks_a_local_path(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="data/grpo"):
        load_recipe_dataset("data/grpo")


def test_hub_ids_go_to_load_dataset(monkeypatch, dataset):
    calls = []

    def fake_load_dataset(name, config=None, **kwargs):
        calls.append((name, config))
        return DatasetDict({"train": dataset})

    monkeypatch.setattr(loading, "load_dataset", fake_load_dataset)
    assert not looks_local("someone/radvlm-grpo")
    loaded = load_recipe_dataset("someone/radvlm-grpo", config="grpo")
    assert calls == [("someone/radvlm-grpo", "grpo")] and len(loaded["train"]) == 4


def test_select_tasks(dataset):
    reports = select_tasks(dataset, "report_generation")
    assert reports["id"] == ["r0", "r2"]
    assert select_tasks(dataset, None) is dataset
    grounding = select_tasks(DatasetDict({"train": dataset}), ["phrase_grounding", "anatomical_grounding"])
    assert grounding["train"]["id"] == ["r1", "r3"]
    with pytest.raises(ValueError, match="abnormality_grounding"):
        select_tasks(dataset, ["report_generation", "abnormality_grounding"])
    partial = select_tasks(DatasetDict({"train": dataset, "test": dataset.select([0])}), "phrase_grounding")
    assert len(partial["train"]) == 1 and len(partial["test"]) == 0  # warned, not raised: the split may be unused
    with pytest.raises(ValueError, match="'task' column"):
        select_tasks(dataset.remove_columns("task"), "report_generation")


def test_loads_what_prepare_data_writes(tmp_path):
    """The converter's folder layout (one split added at a time) is what load_recipe_dataset reads."""
    from radvlm_grpo.data.radvlm_json import save_split

    save_split(Dataset.from_dict(ROWS), tmp_path / "out", "train")
    save_split(Dataset.from_dict(ROWS).select([0]), tmp_path / "out", "test")
    loaded = load_recipe_dataset(str(Path(tmp_path / "out")))
    assert sorted(loaded) == ["test", "train"] and len(loaded["test"]) == 1


# ---------------------------------------------------------------------------------------------------------------------
# Images referenced by path
# ---------------------------------------------------------------------------------------------------------------------


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return str(path)


@pytest.fixture
def image_dir(tmp_path, monkeypatch) -> Path:
    """``imgs/ok.png`` and an ``imgs/bad.png`` that is no image; the working directory is ``tmp_path``, where
    relative paths start from (as the processor reads them)."""
    (tmp_path / "imgs").mkdir()
    PILImage.new("L", (8, 8)).save(tmp_path / "imgs" / "ok.png")
    (tmp_path / "imgs" / "bad.png").write_bytes(b"<html>Not Found</html>")
    monkeypatch.chdir(tmp_path)
    return tmp_path / "imgs"


def test_grpo_image_paths_are_checked_when_loading(image_dir):
    """A missing or unreadable image fails at load time, naming the row, its id and the path (it failed mid-run,
    inside the processor, with "Incorrect image source ... Incorrect padding" and neither row nor path)."""
    rows = [{"image": f"imgs/{name}.png", "id": f"r{i}"} for i, name in enumerate(["ok", "missing", "bad", "ok"])]
    with pytest.raises(DatasetImageError) as caught:
        load_recipe_dataset(write_jsonl(image_dir.parent / "grpo.jsonl", rows))
    message = str(caught.value)
    assert "2 of the 3 image paths" in message and str(image_dir.parent) in message
    assert "row 1 (id 'r1'): imgs/missing.png: no such file" in message
    assert "row 2 (id 'r2'): imgs/bad.png: not a readable image" in message and "imgs/ok.png" not in message
    assert "Fix the paths" in message

    good = write_jsonl(image_dir.parent / "good.jsonl", [rows[0], rows[3]])
    assert load_recipe_dataset(good)["train"]["id"] == ["r0", "r3"]
    (image_dir.parent / "elsewhere").mkdir()
    os.chdir(image_dir.parent / "elsewhere")  # relative paths follow the working directory
    with pytest.raises(DatasetImageError, match="row 0 .id 'r0'.: imgs/ok.png: no such file"):
        load_recipe_dataset(good)
    assert len(load_recipe_dataset(good, check_images=False)["train"]) == 2


def test_sft_image_lists_and_image_features_holding_paths_are_checked(image_dir):
    rows = [
        {"messages": [], "images": [], "id": "s0"},
        {"messages": [], "images": ["imgs/ok.png", str(image_dir / "gone.png")], "id": "s1"},
    ]
    with pytest.raises(DatasetImageError, match=f"row 1 .id 's1'.: {image_dir / 'gone.png'}: no such file"):
        load_recipe_dataset(write_jsonl(image_dir.parent / "sft.jsonl", rows))

    # A Parquet Image feature storing a path only (no bytes) is read from that path too; stored bytes need no file.
    features = Features({"images": List(Image()), "id": Value("string")})
    stored = {"bytes": (image_dir / "ok.png").read_bytes(), "path": "not/there.png"}
    paths = [[stored], [{"bytes": None, "path": "imgs/ok.png"}], [{"bytes": None, "path": "imgs/bad.png"}]]
    Dataset.from_dict({"images": paths, "id": ["a", "b", "c"]}, features=features).to_parquet("sft.parquet")
    with pytest.raises(DatasetImageError, match="1 of the 2 image paths.*\n  row 2 .id 'c'.: imgs/bad.png"):
        load_recipe_dataset("sft.parquet")
