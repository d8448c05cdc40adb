"""Loading the processor and the model a recipe names, with clear errors when either is missing."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, ProcessorMixin
from trl import ModelConfig


def check_model_source(name_or_path: str) -> str:
    """Name the model for error messages; a path that cannot be a Hub id and does not exist fails here."""
    path = Path(name_or_path).expanduser()
    if path.exists():
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(f"Model folder {name_or_path!r} does not exist. {_HOW_TO_GET_A_MODEL}")
    return name_or_path


_HOW_TO_GET_A_MODEL = (
    "Build the tiny demo model with `python -m radvlm_grpo.models.tiny data/tiny-qwen3-vl`, or set model_name_or_path to a "
    "Hub id such as Qwen/Qwen3-VL-8B-Instruct (downloaded on first use; set HF_TOKEN for gated repos)."
)


def _load(loader, name_or_path: str, **kwargs):
    name_or_path = check_model_source(name_or_path)
    try:
        return loader(name_or_path, **kwargs)
    except OSError as error:
        raise OSError(f"Could not load {name_or_path!r}: {error}\n{_HOW_TO_GET_A_MODEL}") from error


def get_processor(
    model_args: ModelConfig,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    padding_side: str | None = None,
) -> ProcessorMixin:
    """The model's processor, with the recipe's image pixel limits applied to its resize.

    Qwen's processors read ``size={"shortest_edge": min_pixels, "longest_edge": max_pixels}`` as pixel counts.
    """
    kwargs = {"revision": model_args.model_revision, "trust_remote_code": False}
    if padding_side:
        kwargs["padding_side"] = padding_side
    processor = _load(AutoProcessor.from_pretrained, model_args.model_name_or_path, **kwargs)
    if min_pixels is not None or max_pixels is not None:
        size = dict(processor.image_processor.size)
        if min_pixels is not None:
            size["shortest_edge"] = min_pixels
        if max_pixels is not None:
            size["longest_edge"] = max_pixels
        processor.image_processor.size = size
    return processor


def get_model_init_kwargs(model_args: ModelConfig) -> dict:
    """Keyword arguments for ``from_pretrained``: revision, dtype and attention implementation from the recipe."""
    kwargs = {"revision": model_args.model_revision, "dtype": model_args.dtype or "auto"}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    return kwargs


def get_model(model_args: ModelConfig, **overrides) -> torch.nn.Module:
    kwargs = get_model_init_kwargs(model_args) | overrides
    return _load(AutoModelForImageTextToText.from_pretrained, model_args.model_name_or_path, **kwargs)


def merge_lora(
    adapter_dir: str | Path, output_dir: str | Path, base_model: str | None = None, dtype: str = "auto"
) -> Path:
    """Fold a LoRA adapter into its base model and save a plain checkpoint (with the adapter folder's processor and
    card), so the next stage loads it like any model: GRPO adds its own LoRA, vLLM serves it, evaluation reads it."""
    import shutil

    from peft import PeftConfig, PeftModel

    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    if not (adapter_dir / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir} holds no LoRA adapter (adapter_config.json); nothing to merge.")
    base = base_model or PeftConfig.from_pretrained(str(adapter_dir)).base_model_name_or_path
    model = _load(AutoModelForImageTextToText.from_pretrained, base, dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(output_dir)
    has_processor = any((adapter_dir / f).is_file() for f in ("processor_config.json", "preprocessor_config.json"))
    _load(AutoProcessor.from_pretrained, str(adapter_dir) if has_processor else base).save_pretrained(output_dir)
    if (adapter_dir / "README.md").is_file():
        shutil.copy(adapter_dir / "README.md", output_dir / "README.md")
    return output_dir
