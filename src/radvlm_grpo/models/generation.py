"""Batched, resumable generation over a dataset: what evaluation and cold-start trace writing share.

Two backends behind one interface: vLLM when it is installed and a GPU is there (fast, for real model sizes), and
batched transformers ``generate`` otherwise (any machine, the tiny model in tests). Results are appended to a JSON
Lines file as each batch finishes, so a crashed run restarts where it stopped instead of from the beginning.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


@dataclass
class SamplingSettings:
    """How to sample. ``temperature`` 0 means greedy decoding (the paper's evaluation default)."""

    max_new_tokens: int = field(default=1024, metadata={"help": "Most tokens generated per answer."})
    temperature: float = field(default=0.0, metadata={"help": "0 for greedy decoding."})
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling mass (ignored when greedy)."})
    top_k: int = field(default=0, metadata={"help": "Top-k sampling (0 = off; ignored when greedy)."})
    seed: int = field(default=0, metadata={"help": "Sampling seed."})


@dataclass
class GenerationRequest:
    id: str
    messages: list[dict]
    images: list[Any]


@dataclass
class GenerationResult:
    id: str
    text: str
    num_tokens: int
    truncated: bool
    attempts: int = 1


class Generator(Protocol):
    def generate(self, requests: Sequence[GenerationRequest], settings: SamplingSettings) -> list[GenerationResult]:
        """One result per request, in order."""


class TransformersGenerator:
    """Left-padded batched ``model.generate`` with the processor's chat template."""

    def __init__(self, model, processor, batch_size: int = 8):
        self.model, self.processor, self.batch_size = model, processor, batch_size
        self.processor.tokenizer.padding_side = "left"
        eos = model.generation_config.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}

    def generate(self, requests: Sequence[GenerationRequest], settings: SamplingSettings) -> list[GenerationResult]:
        import torch

        texts = [self.processor.apply_chat_template(r.messages, add_generation_prompt=True) for r in requests]
        images = [image for r in requests for image in r.images]
        batch = self.processor(text=texts, images=images or None, padding=True, return_tensors="pt")
        batch = batch.to(self.model.device)
        greedy = settings.temperature <= 0
        kwargs = dict(max_new_tokens=settings.max_new_tokens, do_sample=not greedy)
        if not greedy:
            torch.manual_seed(settings.seed)
            kwargs |= dict(temperature=settings.temperature, top_p=settings.top_p, top_k=settings.top_k or None)
        # no_grad, not inference_mode: the model may be the one being trained (validation during GRPO), whose
        # weights must not become inference tensors.
        with torch.no_grad():
            output = self.model.generate(**batch, **kwargs)
        new_tokens = output[:, batch["input_ids"].shape[1] :]
        results = []
        for request, tokens in zip(requests, new_tokens.tolist()):
            pad = self.processor.tokenizer.pad_token_id
            while tokens and tokens[-1] == pad and pad not in self.eos_ids:
                tokens.pop()
            ended = next((i for i, t in enumerate(tokens) if t in self.eos_ids), None)
            kept = tokens if ended is None else tokens[:ended]
            text = self.processor.tokenizer.decode(kept, skip_special_tokens=True)
            results.append(GenerationResult(request.id, text, len(kept), truncated=ended is None))
        return results


class VLLMGenerator:
    """vLLM offline inference; images go in as ``multi_modal_data`` so vLLM runs the vision tower itself."""

    def __init__(self, model: str, llm=None, revision: str | None = None, **engine_kwargs):
        if llm is None:
            try:
                from vllm import LLM
            except ImportError as error:
                raise ImportError("The vLLM backend needs `pip install -e '.[vllm]'` on a GPU machine.") from error
            llm = LLM(model=model, revision=revision, limit_mm_per_prompt={"image": 1, "video": 0}, **engine_kwargs)
        self.llm = llm

    def _sampling_params(self, settings: SamplingSettings):
        from vllm import SamplingParams

        greedy = settings.temperature <= 0
        return SamplingParams(
            max_tokens=settings.max_new_tokens,
            temperature=0.0 if greedy else settings.temperature,
            top_p=1.0 if greedy else settings.top_p,
            top_k=-1 if greedy or not settings.top_k else settings.top_k,
            seed=settings.seed,
        )

    def generate(self, requests: Sequence[GenerationRequest], settings: SamplingSettings) -> list[GenerationResult]:
        tokenizer = self.llm.get_tokenizer()
        inputs = []
        for request in requests:
            prompt = tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
            item = {"prompt": prompt}
            if request.images:
                item["multi_modal_data"] = {"image": request.images[0] if len(request.images) == 1 else request.images}
            inputs.append(item)
        outputs = self.llm.generate(inputs, self._sampling_params(settings), use_tqdm=False)
        return [
            GenerationResult(
                r.id, o.outputs[0].text, len(o.outputs[0].token_ids), o.outputs[0].finish_reason == "length"
            )
            for r, o in zip(requests, outputs)
        ]


def vllm_available() -> bool:
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


def _read_done(path: Path) -> dict[str, GenerationResult]:
    """Finished rows of an earlier run; a line cut off by a crash is ignored (its row is generated again)."""
    done = {}
    if not path.is_file():
        return done
    with path.open() as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            done[record["id"]] = GenerationResult(**record)
    return done


def generate_all(
    generator: Generator,
    requests: Iterable[GenerationRequest],
    settings: SamplingSettings,
    output_path: str | Path,
    batch_size: int = 8,
    total: int | None = None,
    retry: Callable[[GenerationResult], bool] | None = None,
    max_attempts: int = 1,
    desc: str = "Generating",
) -> dict[str, GenerationResult]:
    """Generate every request not already in ``output_path`` and append each batch's results as JSON Lines.

    ``requests`` is consumed lazily, one batch at a time, so images of a large dataset never sit in memory together.
    ``retry(result)`` marks a result to generate again (a thinking answer without ``</think>``, an answer cut at the
    token limit), up to ``max_attempts`` generations in all, as the authors did when evaluating thinking models. With
    greedy decoding a retry gives the same text, so retries are meant for sampling.
    """
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    done = _read_done(output_path)
    if done:
        logger.info(f"Resuming: {len(done)} rows already in {output_path}")
    if output_path.is_file() and output_path.stat().st_size:
        with output_path.open("rb+") as handle:  # a line cut off by a crash must not swallow the next record
            handle.seek(-1, 2)
            if handle.read(1) != b"\n":
                handle.write(b"\n")
    order: list[str] = []
    progress = tqdm(total=total, desc=desc)
    with output_path.open("a") as handle:

        def run(batch: list[GenerationRequest]) -> None:
            results = generator.generate(batch, settings)
            for attempt in range(2, max_attempts + 1):
                again = [i for i, result in enumerate(results) if retry and retry(result)]
                if not again:
                    break
                # A new seed per attempt, or a sampled retry would repeat the same text.
                retried = generator.generate(
                    [batch[i] for i in again], replace(settings, seed=settings.seed + attempt)
                )
                for i, result in zip(again, retried):
                    result.attempts = attempt
                    results[i] = result
            for result in results:
                handle.write(json.dumps(asdict(result)) + "\n")
                done[result.id] = result
            handle.flush()
            progress.update(len(batch))

        batch: list[GenerationRequest] = []
        for request in requests:
            order.append(request.id)
            if request.id in done:
                progress.update(1)
                continue
            batch.append(request)
            if len(batch) == batch_size:
                run(batch)
                batch = []
        if batch:
            run(batch)
    progress.close()
    return {request_id: done[request_id] for request_id in order}
