"""Write cold-start "thinking" traces with a teacher VLM that sees the image, the question and the true answer.

Examples:
    # the authors' teacher, through vLLM on one node of 8 GPUs
    python scripts/generate_cold_start.py --dataset_name data/radvlm_grpo --output_dir data/cold_start \\
        --max_samples 28000 --guide default
    # any Hub VLM through transformers, e.g. the tiny demo model as its own teacher
    python scripts/generate_cold_start.py --teacher_model data/demo-sft --backend transformers \\
        --dataset_name data/synthetic/grpo --output_dir data/demo-cold-start --answer_mode append

The input is a dataset in the GRPO schema (question, image, ground-truth answer and boxes). The output folder holds
the raw teacher generations (``teacher_generations.jsonl``: a crashed run resumes without redoing finished rows), the
kept traces as an SFT dataset (``dataset/``, questions ending in " /think") and ``stats.json`` (why rows were dropped).
"""

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset, DatasetDict

from radvlm_grpo.cli import check_hub_push, check_writable_dir, parse_dataclasses, run_cli
from radvlm_grpo.data.cold_start import (
    TraceFilter,
    close_with_answer,
    load_guide,
    reject_reason,
    sft_row,
    teacher_messages,
)
from radvlm_grpo.data.loading import load_recipe_dataset, select_tasks
from radvlm_grpo.models.generation import (
    GenerationRequest,
    SamplingSettings,
    TransformersGenerator,
    VLLMGenerator,
    generate_all,
    vllm_available,
)
from radvlm_grpo.publishing.hub import CredentialedDataError, credentialed_sources, push_dataset
from radvlm_grpo.vocab.schema import SFT_FEATURES, check_columns

logger = logging.getLogger(__name__)

USAGE = (
    "python scripts/generate_cold_start.py --dataset_name GRPO_DATASET --output_dir DIR "
    "[--teacher_model ID] [--backend {auto,vllm,transformers}] [options]"
)


@dataclass
class ColdStartArguments(TraceFilter):
    """Teacher, data, sampling and output of the trace generation (the filters come from ``TraceFilter``)."""

    dataset_name: str = field(default=None, metadata={"help": "GRPO-schema dataset: a Hub id or a local folder."})
    output_dir: str = field(default=None, metadata={"help": "Where generations, the dataset and stats go."})
    dataset_config: str | None = field(default=None, metadata={"help": "Dataset configuration or subfolder."})
    split: str = field(default="train", metadata={"help": "Split to write traces for."})
    tasks: list[str] = field(default_factory=list, metadata={"help": "Keep only these tasks (all when empty)."})
    max_samples: int | None = field(default=None, metadata={"help": "Rows to use (the authors kept about 28k)."})
    seed: int = field(default=42, metadata={"help": "Seed of the row sample and of sampling."})
    teacher_model: str = field(
        default="Qwen/Qwen3-VL-235B-A22B-Instruct", metadata={"help": "Teacher VLM: a Hub id or a local folder."}
    )
    teacher_revision: str = field(default="main", metadata={"help": "Teacher revision."})
    backend: str = field(default="auto", metadata={"help": "auto (vLLM when there is a GPU), vllm or transformers."})
    tensor_parallel_size: int = field(default=8, metadata={"help": "vLLM tensor parallelism for the teacher."})
    gpu_memory_utilization: float = field(default=0.9, metadata={"help": "vLLM GPU memory fraction."})
    max_model_len: int = field(default=16384, metadata={"help": "vLLM context length (the authors: 16384)."})
    image_max_pixels: int | None = field(
        default=262144, metadata={"help": "Pixel cap of the teacher's images (the authors downscaled to 512 px)."}
    )
    guide: str | None = field(
        default=None, metadata={"help": "Reading guide for the teacher: 'default' (shipped) or a file path."}
    )
    answer_mode: str = field(
        default="teacher",
        metadata={
            "help": "teacher: the teacher writes the final answer and it must match; append: the teacher's reasoning "
            "is closed with the ground-truth answer verbatim (for small teachers that cannot copy reliably)."
        },
    )
    temperature: float = field(default=0.7, metadata={"help": "Teacher sampling temperature (the authors: 0.7)."})
    top_p: float = field(default=1.0, metadata={"help": "Teacher nucleus sampling."})
    max_new_tokens: int = field(default=8192, metadata={"help": "Longest trace (the authors: 8192 tokens)."})
    batch_size: int = field(default=64, metadata={"help": "Rows per generation call."})
    push_to_hub: str | None = field(default=None, metadata={"help": "Hub dataset repo to push the traces to."})
    hub_public: bool = field(
        default=False, metadata={"help": "Make the pushed dataset public (traces of credentialed data must not be)."}
    )
    sources: list[str] = field(
        default_factory=list,
        metadata={
            "help": "What the input rows derive from, e.g. mimic-cxr or synthetic; unknown counts as credentialed."
        },
    )
    allow_public_credentialed: bool = field(
        default=False, metadata={"help": "With --hub_public: confirm that you may redistribute credentialed data."}
    )

    def __post_init__(self) -> None:
        if not self.dataset_name or not self.output_dir:
            raise ValueError("--dataset_name and --output_dir are required.")
        if self.answer_mode not in ("teacher", "append"):
            raise ValueError(f"answer_mode must be 'teacher' or 'append', got {self.answer_mode!r}.")
        if self.backend not in ("auto", "vllm", "transformers"):
            raise ValueError(f"backend must be auto, vllm or transformers, got {self.backend!r}.")
        if self.push_to_hub and self.hub_public and not self.allow_public_credentialed:
            credentialed = credentialed_sources(self.sources)
            if credentialed:  # refuse before hours of generation, not after
                raise CredentialedDataError(
                    f"Refusing a public push of traces derived from {', '.join(credentialed)} (unknown sources count "
                    "as credentialed): keep them private, name --sources, or pass --allow_public_credentialed."
                )


def make_generator(args: ColdStartArguments):
    if args.backend == "vllm" or (args.backend == "auto" and vllm_available()):
        mm_kwargs = {"max_pixels": args.image_max_pixels} if args.image_max_pixels else {}
        return VLLMGenerator(
            args.teacher_model,
            revision=args.teacher_revision,
            tensor_parallel_size=args.tensor_parallel_size,
            gpu_memory_utilization=args.gpu_memory_utilization,
            max_model_len=args.max_model_len,
            mm_processor_kwargs=mm_kwargs,
            seed=args.seed,
        )
    from trl import ModelConfig

    from radvlm_grpo.models.loading import get_model, get_processor

    model_args = ModelConfig(model_name_or_path=args.teacher_model, model_revision=args.teacher_revision, dtype="auto")
    processor = get_processor(model_args, max_pixels=args.image_max_pixels, padding_side="left")
    model = get_model(model_args, device_map="auto")
    return TransformersGenerator(model, processor)


def question_of(prompt: list[dict]) -> str:
    return next(part["text"] for part in reversed(prompt[-1]["content"]) if part["type"] == "text")


def main(args: ColdStartArguments) -> DatasetDict:
    output_dir = Path(args.output_dir)
    dataset = load_recipe_dataset(args.dataset_name, args.dataset_config)
    check_columns(dataset[args.split].column_names, "grpo", source=f"{args.dataset_name}[{args.split}]")
    rows = select_tasks(dataset, args.tasks)[args.split].shuffle(seed=args.seed)
    if args.max_samples:
        rows = rows.select(range(min(args.max_samples, len(rows))))
    guide = load_guide(args.guide)

    requests = (
        GenerationRequest(
            row["id"], teacher_messages(question_of(row["prompt"]), row["solution"], guide), [row["image"]]
        )
        for row in rows
    )
    settings = SamplingSettings(
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p, seed=args.seed
    )
    results = generate_all(
        make_generator(args),
        requests,
        settings,
        output_dir / "teacher_generations.jsonl",
        batch_size=args.batch_size,
        total=len(rows),
        desc="Teacher traces",
    )

    kept, reasons = [], Counter()
    for row in rows:
        trace = results[row["id"]].text
        if args.answer_mode == "append":
            trace = close_with_answer(trace, row["solution"])
        reason = reject_reason(trace, row["solution"], row["task"], row["boxes"], args)
        if reason:
            reasons[reason] += 1
            continue
        kept.append(sft_row(row["prompt"], row["image"], trace, row["task"], row["id"]))

    stats = {"rows": len(rows), "kept": len(kept), "rejected": dict(reasons.most_common())}
    (output_dir / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    logger.info(f"Kept {len(kept)} of {len(rows)} traces; rejected: {dict(reasons)}")
    if not kept:
        raise RuntimeError(f"No trace passed the filters ({dict(reasons)}); see {output_dir / 'stats.json'}.")
    traces = DatasetDict({"train": Dataset.from_list(kept, features=SFT_FEATURES)})
    traces.save_to_disk(output_dir / "dataset")
    if args.push_to_hub:  # private by default; gated and refused as public when derived from credentialed data
        push_dataset(
            traces,
            args.push_to_hub,
            sources=args.sources,
            private=not args.hub_public,
            allow_public_credentialed=args.allow_public_credentialed,
            build_command=f"python scripts/generate_cold_start.py --dataset_name {args.dataset_name}",
            description=f"Cold-start thinking traces written by {args.teacher_model}.",
        )
    print(f"cold start: kept {len(kept)} of {len(rows)} traces -> {output_dir / 'dataset'}")
    return traces


def cli() -> None:
    (arguments,) = parse_dataclasses([ColdStartArguments], description=__doc__, usage=USAGE)
    check_writable_dir(arguments.output_dir)
    if arguments.push_to_hub:
        check_hub_push(arguments.push_to_hub)
    main(arguments)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(levelname)s - %(name)s - %(message)s")
    run_cli(cli)
