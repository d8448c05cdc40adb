"""Publishing to the Hub: checkpoints with their card and datasets with theirs (evaluation results go into a card
through ``radvlm_grpo.evaluation.card.push_evaluation``).

Models, data and results derived from credentialed sources must not become public by accident:

- a checkpoint push is private unless the recipe says ``hub_private_repo: false``;
- a dataset push is private, and gated (access granted by hand) when any source is credentialed or the sources are
  not declared; making such a dataset public is refused unless ``allow_public_credentialed=True`` is passed;
- the Hub token is never handled here: ``HfApi`` reads it from ``HF_TOKEN`` or ``hf auth login``, and nothing this
  module logs, returns or writes (cards, commit messages) contains it.

``CREDENTIALED_SOURCES`` is the documented list of access-controlled chest X-ray sources of the RadVLM data.
``PUBLIC_SOURCES`` lists the credential-free ones with their licence and terms, which the dataset card states. A
source whose licence forbids sharing derivatives (IU X-ray / Open-i, CC BY-NC-ND 4.0) is never pushed, private or not:
``push_dataset`` raises ``NoDerivativesError`` before anything reaches the Hub.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from datasets import Dataset, DatasetDict
from huggingface_hub import CommitOperationAdd, HfApi, ModelCard
from huggingface_hub.errors import EntryNotFoundError
from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

from radvlm_grpo.publishing.cards import DatasetCardInfo, render_dataset_card

logger = logging.getLogger(__name__)

# Optimizer states and intermediate checkpoints stay local; the final folder is what users load. TRL's
# completions/*.parquet (log_completions: prompts and generated reports, maybe of credentialed data) stay local too.
PUSH_IGNORE_PATTERNS = ["checkpoint-*", "*.pt", "*.pth", "runs/*", "completions/*"]
HUB_EVALUATION_DIR = "evaluation"
MAX_SHARD_BYTES = 500 * 1024**2

# Source -> how access is granted. Names are matched after lowercasing and mapping "_" and spaces to "-", on these
# keys and on the aliases below (RadVLM's id prefixes among them).
PHYSIONET = "PhysioNet credentialed access (training and a signed data use agreement)"
CREDENTIALED_SOURCES = {
    "mimic-cxr": PHYSIONET,
    "mimic-cxr-jpg": PHYSIONET,
    "chest-imagenome": PHYSIONET,
    "ms-cxr": PHYSIONET,
    "vindr-cxr": "PhysioNet access-controlled (VinDr-CXR data use agreement)",
    "radvlm-instruction-dataset": PHYSIONET + ", derived from MIMIC-CXR and the other sources",
    "padchest": "BIMCV research-use agreement (PadChest, PadChest-GR)",
    "chexpert": "Stanford AIMI research use agreement (CheXpert, CheXpert Plus)",
}
_ALIASES = {
    "mimic": "mimic-cxr",
    "mimic-labels": "mimic-cxr",
    "chestima": "chest-imagenome",
    "chestimagenome": "chest-imagenome",
    "mscxr": "ms-cxr",
    "vindr": "vindr-cxr",
    "vindr-cxr-mono": "vindr-cxr",
    "radvlm": "radvlm-instruction-dataset",
    "padchest-gr": "padchest",
    "conv-grounded-padchest": "padchest",
    "chexpertplus": "chexpert",
    "chexpert-plus": "chexpert",
    "conv": "mimic-cxr",
    "conv-grounded": "ms-cxr",
}


@dataclass(frozen=True)
class PublicTerms:
    """The licence (a Hub licence id) and terms of a credential-free source; ``no_derivatives``: never push."""

    license: str
    terms: str
    no_derivatives: bool = False


PUBLIC_SOURCES = {
    "open-i": PublicTerms(
        "cc-by-nc-nd-4.0",
        "CC BY-NC-ND 4.0 (IU X-ray, Indiana University / National Library of Medicine, https://openi.nlm.nih.gov): "
        "non-commercial use with attribution; no derivatives may be shared, so converted copies are built locally "
        "from the original at run time and never pushed",
        no_derivatives=True,
    ),
    "nih-chestxray14": PublicTerms(
        "cc0-1.0",
        "public domain (CC0; NIH Clinical Center, https://nihcc.app.box.com/v/ChestXray-NIHCC): use is unrestricted, "
        "but NIH asks users to link the original download site, acknowledge the NIH Clinical Center and cite Wang et "
        'al., "ChestX-ray8: Hospital-scale Chest X-ray Database and Benchmarks ...", CVPR 2017',
    ),
}
_PUBLIC_ALIASES = {
    "openi": "open-i",
    "iu-xray": "open-i",
    "iu-x-ray": "open-i",
    "ykumards/open-i": "open-i",
    "nih": "nih-chestxray14",
    "chestx-ray14": "nih-chestxray14",
    "nih-chest-x-ray-dataset": "nih-chestxray14",
    "alkzar90/nih-chest-x-ray-dataset": "nih-chestxray14",
}


class CredentialedDataError(PermissionError):
    """A public push of data derived from credentialed sources, without the explicit flag."""


class NoDerivativesError(PermissionError):
    """A push of data derived from a source whose licence forbids sharing derivatives (Open-i: CC BY-NC-ND 4.0)."""


def _normalise(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def public_terms(sources: Iterable[str]) -> dict[str, PublicTerms]:
    """The given sources that are credential-free public data, with their licence and terms (matched as
    ``credentialed_sources`` matches: exactly, or as a prefix followed by "-")."""
    found = {}
    for source in sources:
        name = _normalise(source or "")
        for key in sorted({**{k: k for k in PUBLIC_SOURCES}, **_PUBLIC_ALIASES}, key=len, reverse=True):
            if name == key or name.startswith(key + "-"):
                found[source] = PUBLIC_SOURCES[_PUBLIC_ALIASES.get(key, key)]
                break
    return found


def no_derivatives_message(repo_id: str, sources: Iterable[str]) -> str:
    names = ", ".join(sources)
    return (
        f"Refusing to push {repo_id}: it derives from {names}, licensed CC BY-NC-ND 4.0 (no derivatives). Converted "
        "images and reports may be used locally but not shared, on the Hub or elsewhere, privately or publicly. "
        "Build the data on each machine with `python scripts/prepare_public_data.py --dataset open-i ...` instead."
    )


def credentialed_sources(sources: Iterable[str]) -> dict[str, str]:
    """The given sources that are access-controlled, with their access terms; undeclared sources count as one.

    A name matches a listed source or alias exactly or as a prefix followed by "-" (``mimic-cxr-jpg-2.1``).
    """
    sources = [s for s in sources if s and s.strip()]
    if not sources:
        return {"undeclared sources": "unknown provenance: treated as credentialed"}
    found = {}
    for source in sources:
        name = _normalise(source)
        for key in sorted({**{k: k for k in CREDENTIALED_SOURCES}, **_ALIASES}, key=len, reverse=True):
            if name == key or name.startswith(key + "-"):
                canonical = _ALIASES.get(key, key)
                found[source] = CREDENTIALED_SOURCES[canonical]
                break
    return found


def _public_license(public: Mapping[str, PublicTerms], credentialed: Mapping[str, str]) -> str | None:
    """The card's licence when public sources are involved: theirs when they share one, "other" when mixed."""
    if not public:
        return None
    licenses = {terms.license for terms in public.values()}
    return licenses.pop() if len(licenses) == 1 and not credentialed else "other"


def files_to_push(folder: str | Path, ignore_patterns: Sequence[str] = PUSH_IGNORE_PATTERNS) -> list[str]:
    """The files ``push_folder`` sends: every file of ``folder`` not matched by the ignore patterns (ours and those
    ``upload_folder`` always adds, ``.git`` and the download cache), sorted."""
    folder = Path(folder)
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.glob("**/*") if p.is_file())
    return list(filter_repo_objects(paths, ignore_patterns=[*ignore_patterns, *DEFAULT_IGNORE_PATTERNS]))


def push_folder(
    folder: str | Path,
    repo_id: str,
    private: bool | None = None,
    revision: str | None = None,
    commit_message: str = "Upload model trained with radvlm-grpo",
    api: HfApi | None = None,
) -> str:
    """Create the repo (private by default) and upload ``folder``; returns the commit URL."""
    if not (Path(folder) / "README.md").is_file():
        raise FileNotFoundError(f"{folder} has no README.md: every pushed checkpoint carries its model card.")
    api = api or HfApi()
    private = True if private is None else private
    logger.info(f"Pushing {len(files_to_push(folder))} files of {folder} to {repo_id} (private={private})")
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    commit = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        revision=revision,
        commit_message=commit_message,
        ignore_patterns=PUSH_IGNORE_PATTERNS,
    )
    return str(commit)


# ---------------------------------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------------------------------


def _schema_of(dataset: DatasetDict) -> str:
    columns = set(next(iter(dataset.values())).column_names)
    return "sft" if "messages" in columns else "grpo"


def _task_counts(dataset: DatasetDict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for split in dataset.values():
        if "task" in split.column_names:
            for task in split["task"]:
                counts[task] = counts.get(task, 0) + 1
    return dict(sorted(counts.items()))


def stage_dataset(dataset: DatasetDict, folder: str | Path, card_info: DatasetCardInfo) -> list[str]:
    """Write the repo's files to ``folder``: Parquet shards ``data/{split}-XXXXX-of-YYYYY.parquet`` and README.md."""
    folder = Path(folder)
    written = []
    for split, part in dataset.items():
        shards = max(1, -(-part.data.nbytes // MAX_SHARD_BYTES))
        for k in range(shards):
            name = f"data/{split}-{k:05d}-of-{shards:05d}.parquet"
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            part.shard(shards, k, contiguous=True).to_parquet(str(folder / name))
            written.append(name)
    render_dataset_card(card_info).save(folder / "README.md")
    return [*written, "README.md"]


def push_dataset(
    dataset: DatasetDict | Dataset,
    repo_id: str,
    sources: Sequence[str],
    private: bool | None = None,
    gated: bool | None = None,
    allow_public_credentialed: bool = False,
    build_command: str | None = None,
    description: str | None = None,
    revision: str | None = None,
    api: HfApi | None = None,
) -> str:
    """Push a dataset with its card; private by default, and gated when derived from credentialed sources.

    ``sources`` names what the rows derive from (``["mimic-cxr"]``, ``["synthetic"]``): an empty list is treated as
    credentialed. Making credentialed data public raises ``CredentialedDataError`` unless
    ``allow_public_credentialed`` is True (it then stays gated unless ``gated=False``). Data derived from a
    no-derivatives source (Open-i) raise ``NoDerivativesError`` whatever the flags. The card states the licence and
    terms of every public source.
    """
    public = public_terms(sources)
    no_derivatives = [s for s, terms in public.items() if terms.no_derivatives]
    if no_derivatives:
        raise NoDerivativesError(no_derivatives_message(repo_id, no_derivatives))
    if isinstance(dataset, Dataset):
        dataset = DatasetDict({"train": dataset})
    credentialed = credentialed_sources(sources)
    private = True if private is None else private
    if not private and credentialed and not allow_public_credentialed:
        raise CredentialedDataError(
            f"Refusing to make {repo_id} public: it derives from credentialed sources ({', '.join(credentialed)}), "
            "whose data use agreements forbid redistribution. Keep it private, or pass allow_public_credentialed=True "
            "(--allow_public_credentialed) if you have checked that sharing is allowed."
        )
    gated = bool(credentialed) if gated is None else gated
    card_info = DatasetCardInfo(
        repo_id=repo_id,
        schema=_schema_of(dataset),
        splits={name: len(part) for name, part in dataset.items()},
        tasks=_task_counts(dataset),
        sources=list(sources),
        credentialed=credentialed,
        gated=gated,
        build_command=build_command,
        description=description,
        license=_public_license(public, credentialed),
        terms={source: terms.terms for source, terms in public.items()},
    )
    api = api or HfApi()
    with tempfile.TemporaryDirectory() as staging:
        files = stage_dataset(dataset, staging, card_info)
        logger.info(f"Pushing {len(files)} files to dataset {repo_id} (private={private}, gated={gated})")
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if gated:
            api.update_repo_settings(repo_id, gated="manual", repo_type="dataset")
        if revision:
            api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="dataset")
        operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(Path(staging) / f)) for f in files]
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message="Upload dataset built with radvlm-grpo",
            repo_type="dataset",
            revision=revision,
        )
    return str(commit)


# ---------------------------------------------------------------------------------------------------------------------
# Evaluation results
# ---------------------------------------------------------------------------------------------------------------------


def load_hub_card(repo_id: str, revision: str | None = None, api: HfApi | None = None) -> ModelCard | None:
    """The model card of a Hub repo, or None when it has none."""
    api = api or HfApi()
    try:
        path = api.hf_hub_download(repo_id=repo_id, filename="README.md", revision=revision)
    except EntryNotFoundError:
        return None
    return ModelCard.load(path)
