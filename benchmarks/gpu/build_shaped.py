"""A randomly initialised Qwen3-VL with the released 2B or 8B shapes, wired to the tiny model's processor.

The Hub is out of reach on the GPU machine, so the real weights cannot be had; what a GRPO step costs in time and
memory depends on the shapes alone. The text and vision sizes below are those of the released config.json files of
Qwen/Qwen3-VL-2B-Instruct and Qwen/Qwen3-VL-8B-Instruct. The vocabulary stays at the real 151,936 rows (embedding,
LM head and the logits' memory all scale with it); the tiny tokenizer's ids are all below that, so it still runs, and
the special-token ids (image pad, vision start/end, pad, eos) are the tiny tokenizer's.

Usage:
    python benchmarks/gpu/build_shaped.py TINY_DIR OUT_DIR --shape 2b [--device cuda]
    # a quick CPU check of the wiring: same widths, 2 text layers and 4 vision blocks
    python benchmarks/gpu/build_shaped.py TINY_DIR OUT_DIR --shape 2b --text-layers 2 --vision-depth 4 --device cpu
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

QWEN3_VL_VOCAB = 151936
ROPE = {"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20], "mrope_interleaved": True}
SHAPES = {
    "2b": dict(
        text=dict(
            hidden_size=2048,
            intermediate_size=6144,
            num_hidden_layers=28,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=128,
        ),
        vision=dict(
            depth=24,
            hidden_size=1024,
            intermediate_size=4096,
            num_heads=16,
            out_hidden_size=2048,
            deepstack_visual_indexes=[5, 11, 17],
        ),
        tie_word_embeddings=True,
    ),
    "8b": dict(
        text=dict(
            hidden_size=4096,
            intermediate_size=12288,
            num_hidden_layers=36,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=128,
        ),
        vision=dict(
            depth=27,
            hidden_size=1152,
            intermediate_size=4304,
            num_heads=16,
            out_hidden_size=4096,
            deepstack_visual_indexes=[8, 16, 24],
        ),
        tie_word_embeddings=False,
    ),
}


def build_config(tiny_dir: str, shape: str, text_layers: int | None = None, vision_depth: int | None = None):
    from transformers import AutoConfig, AutoTokenizer, Qwen3VLConfig

    tiny = AutoConfig.from_pretrained(tiny_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    spec = SHAPES[shape]
    text = dict(spec["text"])
    vision = dict(spec["vision"])
    if text_layers is not None:
        text["num_hidden_layers"] = text_layers
    if vision_depth is not None:
        vision["depth"] = vision_depth
        vision["deepstack_visual_indexes"] = [i for i in vision["deepstack_visual_indexes"] if i < vision_depth] or [
            vision_depth - 1
        ]
    tie = spec["tie_word_embeddings"]
    return Qwen3VLConfig(
        text_config=dict(
            vocab_size=QWEN3_VL_VOCAB,
            hidden_act="silu",
            max_position_embeddings=262144,
            rms_norm_eps=1e-6,
            attention_bias=False,
            rope_parameters=dict(ROPE),
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=None,
            tie_word_embeddings=tie,
            **text,
        ),
        vision_config=dict(
            hidden_act="gelu_pytorch_tanh",
            in_channels=3,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=2304,
            **vision,
        ),
        image_token_id=tiny.image_token_id,
        video_token_id=tiny.video_token_id,
        vision_start_token_id=tiny.vision_start_token_id,
        vision_end_token_id=tiny.vision_end_token_id,
        tie_word_embeddings=tie,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tiny_dir")
    parser.add_argument("out_dir")
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--text-layers", type=int, default=None, help="Override (quick CPU checks only).")
    parser.add_argument("--vision-depth", type=int, default=None, help="Override (quick CPU checks only).")
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    import torch
    from transformers import AutoProcessor, GenerationConfig, Qwen3VLForConditionalGeneration

    t0 = time.perf_counter()
    config = build_config(args.tiny_dir, args.shape, args.text_layers, args.vision_depth)
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(args.device):
        model = Qwen3VLForConditionalGeneration(config)
    torch.set_default_dtype(torch.float32)
    model.generation_config = GenerationConfig.from_pretrained(args.tiny_dir)
    n_params = sum(p.numel() for p in model.parameters())
    n_vision = sum(p.numel() for p in model.model.visual.parameters())
    t1 = time.perf_counter()
    out = Path(args.out_dir)
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(args.tiny_dir).save_pretrained(out)
    t2 = time.perf_counter()
    info = {
        "shape": args.shape,
        "params": n_params,
        "params_vision": n_vision,
        "dtype": str(next(model.parameters()).dtype),
        "tie_word_embeddings": config.tie_word_embeddings,
        "text_config": {k: getattr(config.text_config, k) for k in ("vocab_size", *SHAPES[args.shape]["text"])},
        "vision_config": {k: getattr(config.vision_config, k) for k in SHAPES[args.shape]["vision"]},
        "init_s": round(t1 - t0, 2),
        "save_s": round(t2 - t1, 2),
        "disk_gb": round(sum(f.stat().st_size for f in out.glob("*.safetensors")) / 1e9, 3),
    }
    (out / "shaped_info.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info))


if __name__ == "__main__":
    main()
