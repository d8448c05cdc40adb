"""Run a checkpoint on chest X-rays: print the report or the boxes, and write each image with its boxes drawn.

Examples:
    # a report for each of two images, from a Hub checkpoint
    python scripts/predict.py --model_name_or_path me/RadVLM-GRPO --images cxr1.png cxr2.jpg
    # phrase grounding; the image with its labelled boxes goes to predictions/cxr1.png
    python scripts/predict.py --model_name_or_path data/demo-grpo --images cxr1.png --task phrase_grounding \
        --phrase "Small left pleural effusion." --output_dir predictions
    # the first 8 rows of a test split, with their own questions; reference boxes drawn beside the predicted ones
    python scripts/predict.py --model_name_or_path data/demo-grpo --dataset_name data/synthetic/grpo --split test \
        --max_samples 8 --output_dir predictions
    # a thinking model on Qwen3-VL's 0-1000 box grid, or a LoRA adapter folder (its base is loaded and merged)
    python scripts/predict.py --model_name_or_path data/public-sft --images cxr1.png --task anatomical_grounding \
        --phrase "right lung" --thinking --box_scale 1000

The task is report_generation (the default), anatomical_grounding, abnormality_grounding or phrase_grounding;
grounding needs --phrase: the region, the abnormality or the report phrase to locate. Answers are greedy unless
--temperature is set. --output_dir receives predictions.jsonl and, for grounding, one PNG per image with the
predicted boxes in red (numbered and labelled) and, for dataset rows, the reference boxes in green.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from radvlm_grpo.cli import UserError, check_writable_dir, parse_dataclasses, run_cli
from radvlm_grpo.models.generation import SamplingSettings
from radvlm_grpo.models.inference import (
    SUBJECT_HELP,
    check_task,
    describe_boxes,
    draw_prediction,
    image_query,
    load_predictor,
    open_image,
    resolve_sources,
    row_query,
)

USAGE = (
    "python scripts/predict.py --model_name_or_path MODEL (--images IMAGE [IMAGE ...] | --dataset_name DATASET) "
    "[--task TASK] [--phrase TEXT] [--output_dir DIR] [options]"
)
PREDICTIONS_FILE = "predictions.jsonl"


@dataclass
class PredictArguments:
    """Which checkpoint, on which images, asked what."""

    model_name_or_path: str = field(
        metadata={"help": "Hub id or local folder of a checkpoint or of a LoRA adapter (its base is loaded from it)."}
    )
    images: list[str] = field(default_factory=list, metadata={"help": "One or more image files (PNG, JPEG...)."})
    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Instead of --images: a dataset in the GRPO schema (folder or Hub id); its rows' questions."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "The dataset's config (subfolder)."})
    split: str = field(default="test", metadata={"help": "The dataset split."})
    max_samples: int = field(default=8, metadata={"help": "Rows of the dataset split to run (0 = all)."})
    task: str | None = field(
        default=None,
        metadata={
            "help": "report_generation, anatomical_grounding, abnormality_grounding or phrase_grounding. With "
            "--images the default is report_generation; with --dataset_name it keeps only that task's rows."
        },
    )
    phrase: str | None = field(
        default=None,
        metadata={"help": "What grounding locates: the region ('right lung'), the abnormality or the report phrase."},
    )
    thinking: bool = field(
        default=False, metadata={"help": "A thinking model: ask with ' /think', answer after </think>."}
    )
    box_scale: float = field(
        default=1.0, metadata={"help": "The boxes' grid: 1 for RadVLM's [0, 1], 1000 for Qwen3-VL."}
    )
    output_dir: str | None = field(
        default=None, metadata={"help": "Folder for predictions.jsonl and the images with their boxes drawn."}
    )
    processor_name_or_path: str | None = field(
        default=None, metadata={"help": "Where the processor comes from when the model folder has none (its base)."}
    )
    model_revision: str | None = field(default=None, metadata={"help": "Hub revision (branch, tag or commit)."})
    dtype: str = field(default="auto", metadata={"help": "Weights dtype: auto, bfloat16, float32."})
    batch_size: int = field(default=8, metadata={"help": "Images generated at once."})

    def __post_init__(self):
        if bool(self.images) == bool(self.dataset_name):
            raise UserError("Give either --images FILE [FILE ...] or --dataset_name DATASET (one of the two).")
        if self.task is not None:
            check_task(self.task)
        if self.phrase and self.dataset_name:
            raise UserError("--phrase is for --images; a dataset's rows ask their own questions (drop --phrase).")
        if self.phrase and self.images and self.task in (None, "report_generation"):
            raise UserError("--phrase is what a grounding task locates; add --task phrase_grounding (or another).")
        if self.images and self.task in SUBJECT_HELP and not (self.phrase or "").strip():
            raise UserError(f"--task {self.task} needs --phrase: {SUBJECT_HELP[self.task]}.")
        if self.batch_size < 1:
            raise UserError(f"--batch_size must be at least 1; got {self.batch_size}.")


def image_queries(args: PredictArguments) -> tuple[list, list[str]]:
    """Queries for the image files (each opened now: a missing or unreadable one fails before the model loads)."""
    task = args.task or "report_generation"
    images = [open_image(path) for path in args.images]
    queries = [image_query(str(k), image, task, args.phrase, args.thinking) for k, image in enumerate(images)]
    return queries, list(args.images)


def dataset_queries(args: PredictArguments) -> tuple[list, list[str]]:
    from radvlm_grpo.data.loading import load_recipe_dataset, select_tasks
    from radvlm_grpo.vocab.schema import check_columns

    dataset = load_recipe_dataset(args.dataset_name, args.dataset_config, splits=args.split)[args.split]
    check_columns(dataset.column_names, "grpo", source=f"{args.dataset_name}[{args.split}]")
    if args.task:
        dataset = select_tasks(dataset, [args.task])
    if args.max_samples:
        dataset = dataset.select(range(min(args.max_samples, len(dataset))))
    if not len(dataset):
        raise UserError(
            f"{args.dataset_name}[{args.split}] has no rows{f' of task {args.task}' if args.task else ''}."
        )
    queries = [row_query(row, args.thinking) for row in dataset]
    return queries, [query.id for query in queries]


def output_names(sources: list[str]) -> list[str]:
    """One PNG name per image: its file stem, numbered when two images share one."""
    stems = [Path(source).stem for source in sources]
    return [f"{stem}.png" if stems.count(stem) == 1 else f"{stem}_{k}.png" for k, stem in enumerate(stems)]


def main(argv: list[str] | None = None) -> list[dict]:
    args, sampling = parse_dataclasses(
        [PredictArguments, SamplingSettings], sys.argv[1:] if argv is None else argv, description=__doc__, usage=USAGE
    )
    if args.output_dir:
        check_writable_dir(args.output_dir)
    resolve_sources(args.model_name_or_path, args.processor_name_or_path, args.model_revision)  # fails before data
    queries, sources = image_queries(args) if args.images else dataset_queries(args)
    predictor = load_predictor(
        args.model_name_or_path,
        processor=args.processor_name_or_path,
        revision=args.model_revision,
        dtype=args.dtype,
        sampling=sampling,
        box_scale=args.box_scale,
        thinking=args.thinking,
        batch_size=args.batch_size,
    )
    predictions = predictor.predict(queries)
    output_dir = Path(args.output_dir) if args.output_dir else None
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for prediction, source, name in zip(predictions, sources, output_names(sources)):
        record = {"source": source, **prediction.record()}
        print(f"== {source} ({prediction.query.task})")
        print(f"question: {prediction.query.question}")
        if args.thinking:
            print(f"generated: {prediction.text}")
        print(f"answer: {prediction.answer}")
        if prediction.is_grounding:
            print("boxes:\n" + describe_boxes(prediction.boxes))
            if output_dir is not None:
                draw_prediction(prediction).save(output_dir / name)
                record["image_with_boxes"] = str(output_dir / name)
                print(f"drawn: {output_dir / name}")
        records.append(record)
    if output_dir is not None:
        with (output_dir / PREDICTIONS_FILE).open("w") as handle:
            for record in records:
                handle.write(json.dumps(record) + "\n")
        print(f"{len(records)} predictions written to {output_dir / PREDICTIONS_FILE}")
    return records


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    run_cli(main)
