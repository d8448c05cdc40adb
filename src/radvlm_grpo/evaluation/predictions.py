"""Generation for evaluation: requests from GRPO-schema rows, the backend, resumable predictions, and answers.

Predictions go to ``predictions.jsonl`` through ``generation.generate_all``, so a crashed evaluation restarts where it
stopped. The settings that shape a prediction are saved next to it (``generation_settings.json``); resuming with other
settings would mix two models' or two decodings' answers, so it is refused unless ``--overwrite`` is given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from datasets import Dataset

from radvlm_grpo.metrics.thinking import EVAL_MAX_CHARS, THINK_CLOSE, Occurrence, extract_answer
from radvlm_grpo.models.generation import (
    GenerationRequest,
    GenerationResult,
    SamplingSettings,
    TransformersGenerator,
    VLLMGenerator,
    generate_all,
    vllm_available,
)

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "predictions.jsonl"
SETTINGS_FILE = "generation_settings.json"
ROWS_PER_CHUNK = 1024  # rows whose images are decoded at once: bounds memory on a 3,000-image test set
DEFAULT_BATCH_SIZE = {"transformers": 8, "vllm": 256}


def resolve_backend(backend: str) -> str:
    if backend == "auto":
        return "vllm" if vllm_available() else "transformers"
    return backend


def generation_record(args, sampling: SamplingSettings, backend: str) -> dict:
    """What must not change between a crashed run and its resumption."""
    return {
        "model_name_or_path": args.model_name_or_path,
        "model_revision": args.model_revision,
        "dataset_name": args.dataset_name,
        "dataset_config": args.dataset_config,
        "split": args.split,
        "think_suffix": args.think_suffix,
        "report_prompt": args.report_prompt,
        "system_prompt": args.system_prompt,
        "image_min_pixels": args.image_min_pixels,
        "image_max_pixels": args.image_max_pixels,
        "max_regenerations": args.max_regenerations,
        "backend": backend,
        "sampling": asdict(sampling),
    }


def prepare_output(output_dir: Path, record: dict, overwrite: bool) -> Path:
    """The predictions file to append to; refuses to resume predictions made with other settings."""
    output_dir.mkdir(parents=True, exist_ok=True)
    predictions, settings = output_dir / PREDICTIONS_FILE, output_dir / SETTINGS_FILE
    if overwrite:
        predictions.unlink(missing_ok=True)
    elif predictions.is_file() and settings.is_file():
        previous = json.loads(settings.read_text())
        changed = sorted(k for k in set(previous) | set(record) if previous.get(k) != record.get(k))
        if changed:
            raise ValueError(
                f"{predictions} was generated with other settings ({', '.join(changed)} differ). Use another "
                "--output_dir, or --overwrite to discard those predictions."
            )
    settings.write_text(json.dumps(record, indent=2) + "\n")
    return predictions


def build_generator(args, sampling: SamplingSettings, backend: str):
    """The generator and the model's parameter count (None when the backend does not expose it)."""
    if backend == "vllm":
        engine_kwargs = dict(
            tensor_parallel_size=args.vllm_tensor_parallel_size,
            gpu_memory_utilization=args.vllm_gpu_memory_utilization,
            seed=sampling.seed,
        )
        if args.vllm_max_model_len:
            engine_kwargs["max_model_len"] = args.vllm_max_model_len
        pixels = {"min_pixels": args.image_min_pixels, "max_pixels": args.image_max_pixels}
        if any(pixels.values()):
            engine_kwargs["mm_processor_kwargs"] = {k: v for k, v in pixels.items() if v}
        return VLLMGenerator(args.model_name_or_path, revision=args.model_revision, **engine_kwargs), None

    import torch
    from trl import ModelConfig

    from radvlm_grpo.models.loading import get_model, get_processor

    model_args = ModelConfig(
        model_name_or_path=args.model_name_or_path, model_revision=args.model_revision, dtype=args.dtype
    )
    processor = get_processor(model_args, args.image_min_pixels, args.image_max_pixels, padding_side="left")
    model = get_model(model_args, device_map="auto" if torch.cuda.is_available() else None).eval()
    batch_size = args.batch_size or DEFAULT_BATCH_SIZE["transformers"]
    return TransformersGenerator(model, processor, batch_size), sum(p.numel() for p in model.parameters())


def needs_regeneration(result: GenerationResult) -> bool:
    """A thinking answer the authors generated again: no ``</think>``, or cut at the token limit."""
    return result.truncated or THINK_CLOSE not in result.text


def regeneration_rule(thinking: bool, max_regenerations: int, sampling: SamplingSettings):
    if not thinking or max_regenerations == 0:
        return None
    if sampling.temperature <= 0:
        logger.warning(
            "Greedy decoding would give the same text again, so answers without </think> are not regenerated; "
            "sample (--temperature > 0) to regenerate them as the authors did for Qwen3-VL-Thinking."
        )
        return None
    return needs_regeneration


def generate_predictions(
    dataset: Dataset,
    generator,
    sampling: SamplingSettings,
    path: Path,
    batch_size: int,
    retry=None,
    max_attempts: int = 1,
) -> list[GenerationResult]:
    """One result per row, in row order; rows already in ``path`` are not generated again."""
    ids = dataset["id"]
    if len(set(ids)) != len(ids):
        raise ValueError(
            "The evaluation split has duplicate ids; predictions are resumed by id, so ids must be unique."
        )
    results: dict[str, GenerationResult] = {}
    for start in range(0, len(dataset), ROWS_PER_CHUNK):
        rows = dataset.select(range(start, min(start + ROWS_PER_CHUNK, len(dataset))))
        requests = [GenerationRequest(row["id"], row["prompt"], [row["image"]]) for row in rows]
        results |= generate_all(
            generator,
            requests,
            sampling,
            path,
            batch_size=batch_size,
            retry=retry,
            max_attempts=max_attempts,
            desc=f"Generating rows {start}-{start + len(rows)} of {len(dataset)}",
        )
    return [results[i] for i in ids]


def answer_of(text: str, thinking: bool, occurrence: Occurrence) -> str:
    """The scored answer: after ``</think>`` when thinking ("" when it is missing), cut to 4,000 characters."""
    answer = extract_answer(text, thinking=thinking, occurrence=occurrence)
    return (answer or "")[:EVAL_MAX_CHARS]


def generation_summary(results: Sequence[GenerationResult], thinking: bool) -> dict[str, int]:
    return {
        "rows": len(results),
        "truncated": sum(r.truncated for r in results),
        "regenerated": sum(r.attempts > 1 for r in results),
        **({"missing_think_close": sum(THINK_CLOSE not in r.text for r in results)} if thinking else {}),
    }
