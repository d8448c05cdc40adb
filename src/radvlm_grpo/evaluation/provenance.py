"""Which scorer weights produced the clinical numbers: where each came from and the SHA-256 of every weights file.

Two evaluations with the same code can differ because their scorers differ (another RadGraph-XL upload, a local
copy of CheXbert, a re-trained BERTScore model). ``metrics.json``, ``results.md`` and the card therefore record, per
clinical metric, each model it loaded: its Hub repository and commit when it came from the Hub cache, else its local
folder, and the hash of each weights file that was read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".th", ".ckpt", ".h5", ".msgpack", ".tar.gz")
# <cache>/models--<org>--<name>/snapshots/<commit>/...: the layout huggingface_hub downloads into.
_HUB_SNAPSHOT = re.compile(r"(?:^|/)models--(?P<repo>[^/]+)/snapshots/(?P<commit>[0-9a-f]{40})(?:/|$)")
_CHUNK = 16 * 1024**2
_hashes: dict[tuple[str, int, int], str] = {}


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, computed once per (path, size, modification time): RadCliQ shares files with two metrics."""
    path = Path(path)
    stat = path.stat()
    key = (str(path.absolute()), stat.st_size, stat.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def _weight_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(p for p in path.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))


def weights_record(component: str, path: str | Path, extra_files: Iterable[str | Path] = ()) -> dict:
    """Where ``path`` (a weights file or a model folder) came from, and the SHA-256 of its weights files.

    A path inside a Hub cache snapshot is reported as its repository and commit; any other path as a local folder.
    """
    path = Path(path).expanduser().absolute()
    match = _HUB_SNAPSHOT.search(path.as_posix())
    record: dict = {"component": component}
    if match:
        record |= {"repo_id": match["repo"].replace("--", "/"), "revision": match["commit"]}
    else:
        record["local_path"] = str(path)
    files = _weight_files(path) + [Path(p) for p in extra_files]
    record["files"] = {p.name: sha256_of(p) for p in files if p.is_file()}
    return record


def hub_model_record(component: str, model: str, filename: str = "config.json") -> dict:
    """A model named by Hub id or folder: the folder's record, else the cached snapshot's (what ``from_pretrained``
    loads offline), else the id alone with ``revision`` None when it is not in the cache."""
    if Path(model).expanduser().is_dir():
        return weights_record(component, model)
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model, filename)
    if isinstance(cached, str):
        return weights_record(component, Path(cached).parent)
    return {"component": component, "repo_id": model, "revision": None, "files": {}}


def _bertscore(scorer) -> dict:
    return hub_model_record(f"BERTScore {scorer.model_type}", str(scorer.source))


def _chexbert(scorer) -> dict:
    return weights_record("CheXbert", scorer.checkpoint)


def _inside(path: Path, root: Path | None) -> bool:
    if root is None:
        return False
    try:
        path.absolute().relative_to(root.absolute())
    except ValueError:
        return False
    return True


def _radgraph(scorer, weights_dir: str | None) -> dict:
    """A RadGraph folder from the weights folder is reported as local; one extracted from the Hub archive (the
    scorer's default) as the archive's repository and commit, with the hashes of the archive and of the extracted
    ``weights.th``."""
    from huggingface_hub import try_to_load_from_cache

    from radvlm_grpo.scorers._weights import RRG_SCORERS_REPO, weights_dir_or_env
    from radvlm_grpo.scorers.radgraph import ARCHIVES

    name = "RadGraph-XL" if scorer.model_type == "radgraph-xl" else "RadGraph"
    folder = Path(scorer.folder)
    if not _inside(folder, weights_dir_or_env(weights_dir)):
        archive = try_to_load_from_cache(RRG_SCORERS_REPO, ARCHIVES[scorer.model_type])
        if isinstance(archive, str):
            return weights_record(name, archive, extra_files=_weight_files(folder))
    return weights_record(name, folder)


def scorer_weights(metric: str, scorer, weights_dir: str | None = None, green_model: str | None = None) -> list[dict]:
    """The records of every model behind one clinical metric (RadCliQ: its RadGraph, BERTScore and CheXbert)."""
    if metric == "bertscore":
        return [_bertscore(scorer)]
    if metric == "chexbert":
        return [_chexbert(scorer)]
    if metric == "radgraph":
        return [_radgraph(scorer, weights_dir)]
    if metric == "radcliq":
        return [_radgraph(scorer.radgraph, weights_dir), _bertscore(scorer.bertscore), _chexbert(scorer.chexbert)]
    if metric == "green":
        return [hub_model_record("GREEN judge", green_model or "")]
    raise ValueError(f"No weights record for metric {metric!r}.")


def weights_markdown(scorers: Mapping[str, list[dict]]) -> str:
    """A table of the scorer weights: one row per weights file (the first 16 hex digits of its SHA-256; the full
    hashes are in metrics.json)."""
    lines = ["| metric | model | from | file | sha256 |", "|---|---|---|---|---|"]
    for metric, records in scorers.items():
        for record in records:
            if "repo_id" in record:
                revision = record.get("revision")
                origin = f"`{record['repo_id']}`" + (f" @ `{revision[:12]}`" if revision else " (not in the cache)")
            else:
                origin = f"local `{record['local_path']}`"
            files = record["files"] or {"–": None}
            for name, digest in files.items():
                shown = f"`{digest[:16]}`" if digest else "–"
                lines.append(f"| {metric} | {record['component']} | {origin} | {name} | {shown} |")
    return "\n".join(lines) + "\n"
