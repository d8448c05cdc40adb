"""RadVLM-GRPO: recipes to train chest X-ray vision-language models with SFT and GRPO on TRL."""

__version__ = "0.1.0.dev0"
