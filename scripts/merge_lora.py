"""Merge a LoRA adapter (what the LoRA recipes save) into its base model, for the next stage to load as a plain model.

GRPO with LoRA must start from a plain checkpoint (TRL will not stack a new adapter on a saved one), and vLLM and
``scripts/evaluate.py`` read plain checkpoints; the merged folder keeps the adapter's processor and model card.

Example:
    python scripts/merge_lora.py --adapter_dir data/public-sft --output_dir data/public-sft-merged
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from radvlm_grpo.cli import check_writable_dir, parse_dataclasses, run_cli
from radvlm_grpo.models.loading import merge_lora

USAGE = "python scripts/merge_lora.py --adapter_dir ADAPTER_DIR --output_dir OUTPUT_DIR [--base_model ID] [--dtype D]"


@dataclass
class MergeArguments:
    """What to merge and where to write the merged checkpoint."""

    adapter_dir: str = field(metadata={"help": "Folder of the LoRA adapter (a LoRA recipe's output_dir)."})
    output_dir: str = field(metadata={"help": "Folder for the merged model, its processor and card."})
    base_model: str | None = field(
        default=None, metadata={"help": "Base model (default: the one recorded in adapter_config.json)."}
    )
    dtype: str = field(default="auto", metadata={"help": "dtype of the merged weights: auto, bfloat16, float32."})


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    (args,) = parse_dataclasses([MergeArguments], args, description=__doc__, usage=USAGE)
    check_writable_dir(args.output_dir)
    path = merge_lora(args.adapter_dir, args.output_dir, args.base_model, args.dtype)
    print(f"Merged model written to {path}")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run_cli(main)
