"""Load the dataset a recipe names, wherever it lives, as a ``DatasetDict``.

``dataset_name`` in a recipe may be a ``save_to_disk`` folder (what ``scripts/prepare_data.py`` and the synthetic
builder write), a folder or file of json/jsonl/parquet/csv data files, or a Hub id. For a local folder,
``dataset_config`` names a subfolder when one of that name exists (``OUT`` + ``grpo`` -> ``OUT/grpo``). A path that
looks local but is not there fails here, with the path in the message, instead of as a confusing Hub lookup.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

logger = logging.getLogger(__name__)

# File extension -> the `datasets` packaged builder that reads it.
DATA_FILE_BUILDERS = {
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".arrow": "arrow",
}


def looks_local(name_or_path: str) -> bool:
    """True for what can only be a path: absolute, ./ ../ ~, more than one "/", a data-file extension, or
    ``folder/name`` where ``folder`` is a local directory (``data/grpo`` when ``data/`` exists).

    Hub ids are ``name`` or ``owner/name``, so anything else is meant as a local path.
    """
    if name_or_path.startswith(("/", "./", "../", "~", ".\\")) or os.path.isabs(name_or_path):
        return True
    if name_or_path.count("/") > 1 or "\\" in name_or_path:
        return True
    if name_or_path.count("/") == 1 and Path(name_or_path.split("/")[0]).is_dir():
        return True
    return Path(name_or_path).suffix.lower() in DATA_FILE_BUILDERS


def is_saved_to_disk(path: Path) -> bool:
    """A folder written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    if (path / "dataset_dict.json").is_file():
        return True
    return (path / "dataset_info.json").is_file() and (path / "state.json").is_file()


def _load_local(path: Path, config: str | None) -> DatasetDict | Dataset:
    if config and (path / config).is_dir():
        # A local config is a subfolder: OUT/sft and OUT/grpo as the synthetic builder writes them.
        path, config = path / config, None
    if path.is_dir() and is_saved_to_disk(path):
        return load_from_disk(str(path))
    if path.is_file():
        builder = DATA_FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(
                f"Cannot load {path}: unknown data file type; expected one of {sorted(DATA_FILE_BUILDERS)}."
            )
        return load_dataset(builder, data_files=str(path))
    return load_dataset(str(path), config)


def _select_splits(dataset: DatasetDict, splits: str | Sequence[str] | None, source: str) -> DatasetDict:
    if splits is None:
        return dataset
    wanted = [splits] if isinstance(splits, str) else list(splits)
    missing = [s for s in wanted if s not in dataset]
    if missing:
        raise KeyError(f"{source} has no split(s) {missing}; it has {list(dataset)}.")
    return DatasetDict({s: dataset[s] for s in wanted})


def load_recipe_dataset(
    name_or_path: str, config: str | None = None, splits: str | Sequence[str] | None = None
) -> DatasetDict:
    """The dataset a recipe's ``dataset_name``/``dataset_config`` name; a bare ``Dataset`` becomes split "train"."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        dataset = _load_local(path, config)
    elif looks_local(name_or_path):
        raise FileNotFoundError(
            f"Dataset path {name_or_path!r} does not exist. Build it with `python scripts/prepare_data.py ...` "
            "(RadVLM JSON) or `python -m radvlm_grpo.data.synthetic OUT_DIR`, or give a Hub dataset id."
        )
    else:
        dataset = load_dataset(name_or_path, config)
    if isinstance(dataset, Dataset):
        dataset = DatasetDict({"train": dataset})
    return _select_splits(dataset, splits, name_or_path)


def _filter_tasks(dataset: Dataset, wanted: set[str]) -> Dataset:
    # input_columns: only the task strings are read, never the images.
    return dataset.filter(lambda tasks: [t in wanted for t in tasks], input_columns="task", batched=True)


def select_tasks(dataset: Dataset | DatasetDict, tasks: str | Sequence[str] | None) -> Dataset | DatasetDict:
    """Keep the rows of the given tasks (None or empty: all rows); each task must have rows in some split."""
    if not tasks:
        return dataset
    wanted = {tasks} if isinstance(tasks, str) else set(tasks)
    parts = dataset if isinstance(dataset, DatasetDict) else {"dataset": dataset}
    present: set[str] = set()
    for name, part in parts.items():
        if "task" not in part.column_names:
            raise ValueError(f"Cannot select tasks {sorted(wanted)}: {name} has no 'task' column.")
        present.update(part.unique("task"))
    absent = sorted(wanted - present)
    if absent:
        raise ValueError(f"No rows of task(s) {absent}; the dataset has tasks {sorted(present)}.")
    if isinstance(dataset, Dataset):
        return _filter_tasks(dataset, wanted)
    selected = DatasetDict({name: _filter_tasks(part, wanted) for name, part in dataset.items()})
    empty = [name for name, part in selected.items() if len(part) == 0]
    if empty:
        # Not an error: an unused split (no evaluation) may lack a task; the trainer fails on an empty split it uses.
        logger.warning("Split(s) %s have no rows of task(s) %s.", empty, sorted(wanted))
    return selected
