"""Convert the RadVLM instruction JSON into this project's SFT or GRPO dataset.

Reads RadVLM's instruction JSON (arrays or JSON Lines) and the images they point to, writes one split of a
``save_to_disk`` DatasetDict to --output_dir and/or pushes it to a private, gated Hub dataset (the rows derive from
credentialed sources). The output folder and the push settings are checked before any row is converted.

Example:
    python scripts/prepare_data.py --json mimic_reports.json:report_generation chestima.json \\
        --image_root /data --schema grpo --output_dir data/radvlm_grpo --split train --max_pixels 451584

Each ``--json`` file may carry its task after a colon; without one the task is inferred per row
(see ``radvlm_grpo.data.radvlm_json``).
"""

from __future__ import annotations

import logging
import sys

from radvlm_grpo.cli import check_hub_push, parse_dataclasses, run_cli
from radvlm_grpo.data.radvlm_json import PrepareDataConfig, prepare_dataset
from radvlm_grpo.publishing.hub import CredentialedDataError, credentialed_sources

USAGE = "python scripts/prepare_data.py --json FILE.json[:task] [...] --output_dir DIR [--push_to_hub REPO] [options]"
# What radvlm_json.prepare_dataset names as the rows' source on the dataset card and in the licence guard.
SOURCES = ["radvlm-instruction-dataset"]


def check_push(config: PrepareDataConfig) -> None:
    """The push settings, before hours of conversion: a repo id, a token, and no public push of credentialed data."""
    if not config.push_to_hub:
        return
    check_hub_push(config.push_to_hub)
    credentialed = credentialed_sources(SOURCES)
    if config.hub_public and credentialed and not config.allow_public_credentialed:
        raise CredentialedDataError(
            f"Refusing to make {config.push_to_hub} public: the RadVLM data derive from credentialed sources "
            f"({', '.join(credentialed)}). Drop --hub_public, or pass --allow_public_credentialed if you have checked "
            "that sharing is allowed."
        )


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    (config,) = parse_dataclasses([PrepareDataConfig], args, description=__doc__, usage=USAGE)
    check_push(config)
    prepare_dataset(config)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_cli(main)
