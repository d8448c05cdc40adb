"""Where scorer weights come from: a local folder first, then the Hugging Face Hub cache, with errors that say what.

A *weights folder* (the ``scorer_weights_dir`` reward option, the ``weights_dir`` argument of every scorer) holds one
sub-folder per model, named as on the Hub: ``chexbert/chexbert.pth``, ``bertscore/distilroberta-base/``,
``radgraph-xl/``... Anything not found there is fetched from its Hub home, so an offline machine without the files
gets an error naming the missing file and its repository instead of a stack trace from deep inside transformers.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
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


def missing_weights_error(what: str, filename: str, repo_id: str, tried: Iterable[Path], cause: object) -> OSError:
    tried_text = "".join(f"\n  - {p}" for p in tried) or "\n  (no local weights folder given)"
    return FileNotFoundError(
        f"{what}: could not find '{filename}' locally or download it from the Hugging Face Hub repository "
        f"'{repo_id}' ({cause}). Looked locally in:{tried_text}\nDownload it once with network access "
        f"(huggingface-cli download {repo_id} {filename}) or put it in a weights folder (scorer_weights_dir / "
        f"${WEIGHTS_DIR_ENV})."
    )


def hub_file(repo_id: str, filename: str, what: str, candidates: Iterable[Path] = ()) -> Path:
    """A single file: the first existing local candidate, else ``hf_hub_download`` (cache first, then network)."""
    candidates = list(candidates)
    for path in candidates:
        if path.is_file():
            return path
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo_id=repo_id, filename=filename))
    except Exception as error:  # offline, missing from the cache, gated, network: all mean "not available"
        raise missing_weights_error(what, filename, repo_id, candidates, error) from error


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
