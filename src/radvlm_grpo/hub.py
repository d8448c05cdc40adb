"""Pushing checkpoints to the Hub with their card.

Checkpoints trained on credentialed data (MIMIC-CXR and the other PhysioNet sets) must not become public by accident,
so a push is private unless the recipe says ``hub_private_repo: false``.
"""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi

# Optimizer states and intermediate checkpoints stay local; the final folder is what users load.
PUSH_IGNORE_PATTERNS = ["checkpoint-*", "*.pt", "*.pth", "runs/*"]


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
