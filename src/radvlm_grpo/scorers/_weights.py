"""Where scorer weights come from: a local folder first, then the Hugging Face Hub cache, with errors that say what.

A *weights folder* (the ``scorer_weights_dir`` reward option, the ``weights_dir`` argument of every scorer) holds one
sub-folder per model, named as on the Hub: ``chexbert/chexbert.pth``, ``bertscore/distilroberta-base/``,
``radgraph-xl/``... Anything not found there is fetched from its Hub home, so an offline machine without the files
gets an error naming the missing file, its repository, what the weights folder holds instead, and the
``hf download`` command that fixes it, instead of a stack trace from deep inside transformers.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

# The Hub repository holding RadGraph, RadGraph-XL and CheXbert (metrics.md sections 1-2).
RRG_SCORERS_REPO = "StanfordAIMI/RRG_scorers"
# Environment fallback for the weights folder, so that `evaluate` modules and scripts can be pointed at local files.
WEIGHTS_DIR_ENV = "RADVLM_SCORER_WEIGHTS_DIR"


def weights_dir_or_env(weights_dir: str | os.PathLike | None) -> Path | None:
    """The given weights folder, else ``$RADVLM_SCORER_WEIGHTS_DIR``, else None."""
    value = weights_dir if weights_dir is not None else os.environ.get(WEIGHTS_DIR_ENV) or None
    return Path(value).expanduser() if value is not None else None


def local_candidates(weights_dir: str | os.PathLike | None, relatives: Iterable[str]) -> list[Path]:
    """The paths a local copy may have under the weights folder (empty without one)."""
    root = weights_dir_or_env(weights_dir)
    return [root / r for r in relatives] if root is not None else []


def describe_folder(path: Path, limit: int = 12) -> str:
    """What a folder holds, for error messages: ``<path> holds: a, b/, ...`` (or that it is missing or empty)."""
    if not path.exists():
        return f"{path} does not exist"
    if not path.is_dir():
        return f"{path} is a file, not a folder"
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    if not names:
        return f"{path} is empty"
    more = f", ... ({len(names)} entries)" if len(names) > limit else ""
    return f"{path} holds: {', '.join(names[:limit])}{more}"


def hf_download_command(
    repo_id: str, files: Sequence[str] = (), include: Sequence[str] = (), local_dir: Path | None = None
) -> str:
    """A ``hf download`` command line (huggingface_hub's CLI; ``huggingface-cli`` is gone from huggingface-hub 1.0)."""
    parts = ["hf", "download", repo_id, *files]
    parts += [f"--include {shlex.quote(pattern)}" for pattern in include]
    if local_dir is not None:
        parts += ["--local-dir", shlex.quote(str(local_dir))]
    return " ".join(parts)


def missing_weights_error(
    what: str,
    filename: str,
    repo_id: str,
    tried: Iterable[Path],
    cause: object,
    weights_dir: str | os.PathLike | None = None,
    local_dir: Path | None = None,
    files: Sequence[str] | None = None,
    include: Sequence[str] = (),
) -> FileNotFoundError:
    """The error for weights that are neither local nor downloadable, with the ``hf download`` commands that fix it.

    ``tried``: the local paths looked at; ``weights_dir``: the weights folder given (else ``$RADVLM_SCORER_WEIGHTS_DIR``),
    described with what it holds; ``local_dir``: the folder the download belongs in for a local copy (e.g.
    ``<weights folder>/chexbert``); ``files`` and ``include``: what to download (default: ``filename``).
    """
    tried = list(tried)
    root = weights_dir_or_env(weights_dir)
    files = [filename] if files is None and not include else list(files or [])
    lines = [
        f"{what}: no local copy of '{filename}', and it could not be downloaded from the Hugging Face Hub repository "
        f"'{repo_id}' ({cause})."
    ]
    if root is not None:
        looked = ", ".join(str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in tried)
        lines.append(f"The weights folder {describe_folder(root)}; looked there for: {looked or filename}.")
    elif tried:
        lines.append("Looked locally for: " + ", ".join(str(p) for p in tried) + ".")
    else:
        lines.append(
            f"No weights folder was given (the weights_dir argument, scorer_weights_dir in a recipe, --scorers_dir, "
            f"or ${WEIGHTS_DIR_ENV})."
        )
    lines.append("Fix, once, on a machine with network access: download it into the Hugging Face cache with")
    lines.append(f"  {hf_download_command(repo_id, files, include)}")
    if local_dir is not None:
        lines.append(f"or into {local_dir}, where it is looked for first, with")
        lines.append(f"  {hf_download_command(repo_id, files, include, local_dir)}")
    return FileNotFoundError("\n".join(lines))


def hub_file(
    repo_id: str,
    filename: str,
    what: str,
    candidates: Iterable[Path] = (),
    weights_dir: str | os.PathLike | None = None,
    local_dir: Path | None = None,
) -> Path:
    """A single file: the first existing local candidate, else ``hf_hub_download`` (cache first, then network)."""
    candidates = list(candidates)
    for path in candidates:
        if path.is_file():
            return path
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as error:  # offline, missing from the cache, gated, network: all mean "not available"
        raise missing_weights_error(
            what, filename, repo_id, candidates, error, weights_dir=weights_dir, local_dir=local_dir
        ) from error


def model_source(model_id: str, what: str, candidates: Iterable[Path] = (), required: str = "config.json") -> str:
    """A model folder for ``from_pretrained``: the first local candidate holding ``required``, else the Hub id."""
    for path in candidates:
        if (path / required).is_file():
            return str(path)
    return model_id


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"auto": this process's CUDA device when there is one (the trainer's own GPU), else the CPU.

    Under a distributed launcher the process's GPU is ``LOCAL_RANK``'s, which rewards are built before the trainer
    selects it (``torch.cuda.current_device()`` would still say 0 in every process then).
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            local_rank = os.environ.get("LOCAL_RANK")
            if local_rank is not None and local_rank.isdigit():
                return torch.device("cuda", int(local_rank) % torch.cuda.device_count())
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    return torch.device(device)
