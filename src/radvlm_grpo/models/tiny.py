"""A tiny random Qwen3-VL, built offline and deterministically, for tests and the CPU demo.

The Hub is out of reach on the machines that build and test this project, so the stand-in for Qwen3-VL-8B is made
here from nothing: a byte-level BPE tokenizer trained on radiology-style text (with Qwen's special tokens, and
``<think>``/``</think>`` as single added tokens), TRL's own Qwen3-VL chat template (so TRL recognises it and
``assistant_only_loss`` works), a small image processor, and a two-stack model whose shapes follow Qwen3-VL's rules.

Usage:
    python -m radvlm_grpo.models.tiny OUT_DIR [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from radvlm_grpo.cli import run_cli

# Qwen's special tokens, in Qwen's order. The vision markers are what the processor and model look up.
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
# Added as normal (non-special) tokens, as in the real Qwen3 tokenizers, so they survive skip_special_tokens decoding.
QWEN_ADDED_TOKENS = ["<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>"]

# Radiology-style sentences for the tokenizer; the RadVLM prompt templates and synthetic reports are added at build
# time so the tiny tokenizer covers the demo's vocabulary (numbers included: boxes are written as text).
_BASE_CORPUS = [
    "The lungs are clear. No pleural effusion or pneumothorax. The cardiomediastinal silhouette is normal.",
    "There is a right lower lobe opacity concerning for pneumonia.",
    "Small left pleural effusion with adjacent atelectasis.",
    "The heart is enlarged. Mild pulmonary vascular congestion.",
    "A nodule is seen in the left upper lobe.",
    "An endotracheal tube terminates above the carina. A left chest wall pacemaker is in place.",
    "Provide a radiology report for this Chest X-Ray.",
    "Where is the cardiomegaly located in this Chest X-ray?",
    "The cardiomegaly is located at the coordinates [0.35, 0.51, 0.75, 0.64] on the image.",
    "Please locate the following sentence: There is a small nodule in the right lung.",
    "This sentence is located at the coordinates [0.12, 0.3, 0.45, 0.5] and [0.5, 0.31, 0.9, 0.6] on the image.",
    "0 1 2 3 4 5 6 7 8 9 0.0 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1.0 0.05 0.15 0.25 0.35 0.45 0.55 0.65 0.75 0.85 0.95",
    "<think> The heart is large. </think> The heart is enlarged.",
]


@dataclass
class TinyModelConfig:
    """Sizes of the tiny model. Shapes obey Qwen3-VL's silent constraints (checked in ``validate``)."""

    seed: int = field(default=0, metadata={"help": "Seed for the tokenizer corpus order and the random weights."})
    vocab_size: int = field(default=800, metadata={"help": "Target BPE vocabulary before special tokens."})
    hidden_size: int = field(default=64, metadata={"help": "Text hidden size (= vision out_hidden_size)."})
    intermediate_size: int = field(default=256, metadata={"help": "Text MLP size."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Text decoder layers."})
    num_attention_heads: int = field(default=4, metadata={"help": "Text attention heads."})
    num_key_value_heads: int = field(default=2, metadata={"help": "Text KV heads (grouped-query attention)."})
    head_dim: int = field(default=16, metadata={"help": "Per-head size; mrope_section must sum to head_dim / 2."})
    vision_depth: int = field(default=2, metadata={"help": "Vision transformer blocks."})
    vision_hidden_size: int = field(default=32, metadata={"help": "Vision hidden size."})
    vision_heads: int = field(default=2, metadata={"help": "Vision attention heads."})
    image_size: int = field(default=128, metadata={"help": "Largest square image side kept at full resolution."})

    @property
    def mrope_section(self) -> list[int]:
        # Qwen3-VL splits rotary frequencies between time, height and width; they must sum to head_dim / 2.
        half = self.head_dim // 2
        return [half - 2 * (half // 3), half // 3, half // 3]

    def validate(self) -> None:
        if self.head_dim % 2 or sum(self.mrope_section) != self.head_dim // 2:
            raise ValueError(f"head_dim={self.head_dim} must be even so mrope_section sums to head_dim / 2.")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads.")
        if self.image_size % 32:
            raise ValueError("image_size must be a multiple of 32 (patch 16 x merge 2).")


PATCH_SIZE = 16
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2


def _tokenizer_corpus(seed: int) -> list[str]:
    """Base sentences plus RadVLM's templates and the synthetic data's sentences, so the demo's words are in-vocab."""
    import random

    from radvlm_grpo.data.synthetic_tasks import vocabulary
    from radvlm_grpo.vocab import prompts

    corpus = list(_BASE_CORPUS) + list(vocabulary())
    # Public names only: dunders such as __file__ would make the tokenizer depend on where the package is installed.
    for name, value in vars(prompts).items():
        if name.startswith("_"):
            continue
        if isinstance(value, str):
            corpus.append(value)
        elif isinstance(value, list | tuple):
            corpus += [t for t in value if isinstance(t, str)]
    random.Random(seed).shuffle(corpus)
    return corpus * 4


def build_tokenizer(config: TinyModelConfig):
    """Byte-level BPE trained in-process: no download, same merges for the same seed."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=QWEN_SPECIAL_TOKENS,
        show_progress=False,
    )
    bpe.train_from_iterator(_tokenizer_corpus(config.seed), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=QWEN_SPECIAL_TOKENS,
    )
    tokenizer.add_tokens(QWEN_ADDED_TOKENS)
    return tokenizer


def build_processor(tokenizer, config: TinyModelConfig):
    """Qwen3-VL processor with TRL's stock template and an image processor capped at ``image_size`` squared pixels."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor
    from trl.chat_template_utils import qwen3_vl_chat_template

    unit = PATCH_SIZE * MERGE_SIZE
    size = {"shortest_edge": unit * unit, "longest_edge": config.image_size * config.image_size}
    common = dict(patch_size=PATCH_SIZE, merge_size=MERGE_SIZE, temporal_patch_size=TEMPORAL_PATCH_SIZE, size=size)
    image_processor = Qwen2VLImageProcessor(image_mean=[0.5] * 3, image_std=[0.5] * 3, **common)
    video_processor = Qwen3VLVideoProcessor(**common)
    tokenizer.chat_template = qwen3_vl_chat_template
    return Qwen3VLProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=qwen3_vl_chat_template,
    )


def build_model(tokenizer, config: TinyModelConfig):
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    patches_per_side = config.image_size // PATCH_SIZE
    model_config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            num_key_value_heads=config.num_key_value_heads,
            head_dim=config.head_dim,
            max_position_embeddings=4096,
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": config.mrope_section,
                "mrope_interleaved": True,
            },
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=config.vision_depth,
            hidden_size=config.vision_hidden_size,
            intermediate_size=2 * config.vision_hidden_size,
            num_heads=config.vision_heads,
            patch_size=PATCH_SIZE,
            spatial_merge_size=MERGE_SIZE,
            temporal_patch_size=TEMPORAL_PATCH_SIZE,
            out_hidden_size=config.hidden_size,
            num_position_embeddings=patches_per_side * patches_per_side,
            deepstack_visual_indexes=[config.vision_depth - 1],
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(config.seed)
    model = Qwen3VLForConditionalGeneration(model_config)
    generation = model.generation_config
    generation.eos_token_id = [tokenizer.eos_token_id, tokenizer.pad_token_id]
    generation.pad_token_id = tokenizer.pad_token_id
    generation.bos_token_id = None
    generation.do_sample = False
    return model


def build_tiny_model(output_dir: str | Path, config: TinyModelConfig | None = None) -> Path:
    """Write model, processor and ``tiny_config.json`` to ``output_dir``; reloadable with the Auto classes."""
    config = config or TinyModelConfig()
    config.validate()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(config)
    processor = build_processor(tokenizer, config)
    model = build_model(tokenizer, config)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    (output_dir / "tiny_config.json").write_text(json.dumps(asdict(config), indent=2) + "\n")
    return output_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir", help="Folder to write the model and processor to.")
    for name, spec in TinyModelConfig.__dataclass_fields__.items():
        parser.add_argument(f"--{name}", type=type(spec.default), default=spec.default, help=spec.metadata["help"])
    args = vars(parser.parse_args(argv))
    output_dir = args.pop("output_dir")
    path = build_tiny_model(output_dir, TinyModelConfig(**args))
    print(f"tiny Qwen3-VL written to {path}")


if __name__ == "__main__":
    run_cli(main)
