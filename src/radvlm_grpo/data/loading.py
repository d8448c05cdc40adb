"""Load the dataset a recipe names, wherever it lives, as a ``DatasetDict``.

``dataset_name`` in a recipe may be a ``save_to_disk`` folder (what ``scripts/prepare_data.py`` and the synthetic
builder write), a folder or file of json/jsonl/parquet/csv data files, or a Hub id. For a local folder,
``dataset_config`` names a subfolder when one of that name exists (``OUT`` + ``grpo`` -> ``OUT/grpo``). A path that
looks local but is not there fails here, with the path in the message, instead of as a confusing Hub lookup.

Images may be stored (bytes) or referenced by path (a json/jsonl/parquet/csv ``image`` column of strings, an SFT
``images`` list of them, or an ``Image`` feature holding only a path). Paths are checked when the dataset is loaded:
every file must exist and open as an image (its header only: about 2 s per 10 k distinct files), else one
error names the rows and paths. Unchecked, a missing file fails deep inside the processor whenever its row is drawn.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, concatenate_datasets, load_dataset, load_from_disk
from PIL import Image, UnidentifiedImageError

logger = logging.getLogger(__name__)

# File extension -> the `datasets` packaged builder that reads it.
DATA_FILE_BUILDERS = {
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".csv": "csv",
    ".arrow": "arrow",
}
# The columns holding images: GRPO's single ``image``, SFT's ``images`` list.
IMAGE_COLUMNS = ("image", "images")
MAX_NAMED_ROWS = 5
CHECK_THREADS = 8  # file opens wait on the disk (or a network file system), not on the GIL


class DatasetImageError(ValueError):
    """Rows whose image is a path to a missing or unreadable file; the message names the rows, paths and the fix."""


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


def _paths_of(chunk: pa.Array) -> tuple[pa.Array, pa.Array]:
    """``(paths, positions)`` of the images a chunk of an image column holds as paths; stored bytes are skipped."""
    positions = pa.array(np.arange(len(chunk)))
    if pa.types.is_list(chunk.type) or pa.types.is_large_list(chunk.type):
        positions, chunk = pc.list_parent_indices(chunk), pc.list_flatten(chunk)
    if pa.types.is_string(chunk.type) or pa.types.is_large_string(chunk.type):
        keep = pc.is_valid(chunk)
    elif pa.types.is_struct(chunk.type) and {"bytes", "path"} <= {f.name for f in chunk.type}:
        keep = pc.and_(pc.is_null(pc.struct_field(chunk, "bytes")), pc.is_valid(pc.struct_field(chunk, "path")))
        keep = pc.and_(keep, pc.is_valid(chunk))
        chunk = pc.struct_field(chunk, "path")
    else:
        return pa.array([], pa.string()), pa.array([], pa.int64())
    return chunk.filter(keep), positions.filter(keep)


def image_paths(dataset: Dataset, column: str) -> dict[str, int]:
    """``{path: first row}`` of the images ``column`` references by path (without reading any image bytes)."""
    found: dict[str, int] = {}
    offset = 0
    for chunk in dataset.with_format("arrow")[column].chunks:
        paths, positions = _paths_of(chunk)
        for path, position in zip(paths.to_pylist(), positions.to_pylist()):
            found.setdefault(path, offset + position)
        offset += len(chunk)
    return found


def _decodes_as_base64_image(text: str) -> bool:
    """Whether the processor would read ``text`` as base64 image data (it accepts those besides paths and URLs)."""
    try:
        data = base64.decodebytes(text.split(",", 1)[-1].encode())
        with Image.open(io.BytesIO(data)):
            return True
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError):
        return False


def image_problem(path: str) -> str | None:
    """Why ``path`` cannot be read as the processor reads it (None: it can), opening the header only.

    Relative paths start from the working directory, as in ``transformers``' ``load_image`` and ``datasets``' decoding;
    URLs (``https://``, ``hf://``) are left to the libraries that fetch them.
    """
    if "://" in path:
        return None
    if not os.path.isfile(path):
        if _decodes_as_base64_image(path):
            return None
        return "is a folder, not a file" if os.path.isdir(path) else "no such file"
    try:
        with Image.open(path):  # reads and identifies the header; the pixels are never decoded
            return None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        return f"not a readable image ({err})"


def check_image_paths(dataset: Dataset, source: str = "dataset") -> int:
    """Fail before training or generation when an image referenced by path is missing or unreadable.

    Each distinct path is checked once (many rows may share an image); returns how many were checked.
    """
    paths: dict[str, int] = {}
    for column in IMAGE_COLUMNS:
        if column in dataset.column_names:
            for path, row in image_paths(dataset, column).items():
                paths.setdefault(path, row)
    if not paths:
        return 0
    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        problems = [(p, why) for p, why in zip(paths, pool.map(image_problem, paths)) if why is not None]
    if problems:
        raise DatasetImageError(_image_error_message(dataset, source, problems, paths, len(paths)))
    return len(paths)


def _image_error_message(
    dataset: Dataset, source: str, problems: list[tuple[str, str]], rows: dict[str, int], checked: int
) -> str:
    ids = dataset.with_format("arrow")["id"] if "id" in dataset.column_names else None
    lines = [
        f"{source}: {len(problems)} of the {checked} image paths cannot be read (relative paths start from the "
        f"working directory, {os.getcwd()}):"
    ]
    for path, why in problems[:MAX_NAMED_ROWS]:
        row = rows[path]
        name = f"row {row}" + (f" (id {ids[row].as_py()!r})" if ids is not None else "")
        lines.append(f"  {name}: {path}: {why}")
    if len(problems) > MAX_NAMED_ROWS:
        lines.append(f"  ... and {len(problems) - MAX_NAMED_ROWS} more")
    lines.append(
        "Fix the paths or remove those rows; relative paths need the run to start from the folder they are relative "
        "to (or make them absolute)."
    )
    return "\n".join(lines)


def load_recipe_dataset(
    name_or_path: str,
    config: str | None = None,
    splits: str | Sequence[str] | None = None,
    check_images: bool = True,
) -> DatasetDict:
    """The dataset a recipe's ``dataset_name``/``dataset_config`` name; a bare ``Dataset`` becomes split "train".

    Images referenced by path are checked in every split returned (``check_image_paths``); ``check_images=False``
    is for datasets outside the schema, whose ``image`` column may hold something else (Open-i's exam description).
    """
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
    dataset = _select_splits(dataset, splits, name_or_path)
    for split, part in dataset.items():
        if check_images:
            check_image_paths(part, f"{name_or_path}[{split}]")
    return dataset


def _filter_tasks(dataset: Dataset, wanted: set[str]) -> Dataset:
    # input_columns: only the task strings are read, never the images.
    return dataset.filter(lambda tasks: [t in wanted for t in tasks], input_columns="task", batched=True)


def mix_tasks(dataset: Dataset, tasks: Sequence[str], shares: Sequence[float], seed: int = 42) -> Dataset:
    """The rows of ``tasks`` in the proportions ``shares`` (normalised), as many as the scarcest task allows: each task
    keeps ``round(share * T)`` of its rows, drawn with ``seed``, where ``T`` is the largest total every task can fill;
    the result is shuffled. A joint run sees each task at its stated share, whatever the source's own proportions."""
    if len(tasks) != len(shares):
        raise ValueError(
            f"task_weights has {len(shares)} values for {len(tasks)} tasks: give one per task in `tasks`."
        )
    if any(s < 0 for s in shares) or sum(shares) <= 0:
        raise ValueError(f"task_weights must be >= 0 with a positive sum; got {list(shares)}.")
    total = float(sum(shares))
    parts = {task: _filter_tasks(dataset, {task}) for task, share in zip(tasks, shares) if share > 0}
    empty = sorted(task for task, part in parts.items() if len(part) == 0)
    if empty:
        raise ValueError(f"No rows of task(s) {empty} to mix; the split has {len(dataset)} rows of other tasks.")
    fractions = {task: share / total for task, share in zip(tasks, shares) if share > 0}
    fill = min(len(parts[task]) / fraction for task, fraction in fractions.items())
    drawn = [
        parts[task].shuffle(seed=seed).select(range(min(len(parts[task]), round(fraction * fill))))
        for task, fraction in fractions.items()
    ]
    mixed = concatenate_datasets(drawn).shuffle(seed=seed)
    logger.info("Task mix: %s", ", ".join(f"{task} {len(part)}" for task, part in zip(fractions, drawn)))
    return mixed


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
