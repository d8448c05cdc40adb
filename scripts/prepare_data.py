"""Convert the RadVLM instruction JSON into this project's SFT or GRPO dataset.

    python scripts/prepare_data.py --json mimic_reports.json:report_generation chestima.json \\
        --image_root /data --schema grpo --output_dir data/radvlm_grpo --split train --max_pixels 451584

Each ``--json`` file may carry its task after a colon; without one the task is inferred per row
(see ``radvlm_grpo.data.radvlm_json``).
"""

from __future__ import annotations

import logging
import sys

from transformers import HfArgumentParser

from radvlm_grpo.data.radvlm_json import PrepareDataConfig, prepare_dataset


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    (config,) = HfArgumentParser(PrepareDataConfig).parse_args_into_dataclasses(args=args)
    prepare_dataset(config)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    main()
