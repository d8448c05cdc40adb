"""Models the scripts train and evaluate: loading a checkpoint and its processor, batched generation, and the
built-in tiny Qwen3-VL."""
