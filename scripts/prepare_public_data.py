"""Build the credential-free datasets: IU X-ray / Open-i reports and NIH ChestX-ray14 boxes in the project's schemas.

Writes OUTPUT_DIR/grpo and/or OUTPUT_DIR/sft (train/validation/test by patient or study, seeded) and a README.md
that states the source's licence. Open-i is CC BY-NC-ND 4.0: the converted copy stays on this machine and is never
pushed. The output folder and the push settings are checked before anything is downloaded or converted. See
``radvlm_grpo.data.public`` for the split rule and ``open_i.py`` / ``nih.py`` for the conversions.

Examples:
    python scripts/prepare_public_data.py --dataset open-i --output_dir data/public/openi --schema both
    python scripts/prepare_public_data.py --dataset nih --output_dir data/public/nih --schema both
    # a local copy instead of the Hub, lateral views too, other split shares
    python scripts/prepare_public_data.py --dataset nih --data_dir /data/NIH --output_dir data/public/nih \\
        --split_ratios 0.7 0.15 0.15
"""

from __future__ import annotations

import logging
import sys

from radvlm_grpo.cli import check_hub_push, check_writable_dir, parse_dataclasses, run_cli
from radvlm_grpo.data.prepare_public import PreparePublicDataConfig, prepare_public_dataset

USAGE = "python scripts/prepare_public_data.py --dataset {open-i,nih} --output_dir DIR [--data_dir DIR] [options]"


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    (config,) = parse_dataclasses([PreparePublicDataConfig], args, description=__doc__, usage=USAGE)
    check_writable_dir(config.output_dir)
    if config.push_to_hub:
        check_hub_push(config.push_to_hub)
    prepare_public_dataset(config, args)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_cli(main)
