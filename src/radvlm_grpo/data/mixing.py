"""Mixing two SFT datasets at a fixed ratio: cold-start traces with direct answers, so SFT on thinking traces does not
make the model forget how to answer directly (method.md 1.3)."""

from __future__ import annotations

from datasets import Dataset, concatenate_datasets


def mix_datasets(primary: Dataset, secondary: Dataset, ratio: float, seed: int = 42) -> Dataset:
    """``primary`` plus ``round(ratio * len(primary))`` rows drawn without replacement from ``secondary``, shuffled."""
    if ratio < 0:
        raise ValueError(f"The mixing ratio must be >= 0, got {ratio}.")
    wanted = round(ratio * len(primary))
    if wanted > len(secondary):
        raise ValueError(
            f"Mixing ratio {ratio} asks for {wanted} direct-answer rows but the mix dataset has only {len(secondary)}."
        )
    drawn = secondary.shuffle(seed=seed).select(range(wanted))
    if drawn.features != primary.features:
        drawn = drawn.cast(primary.features)
    return concatenate_datasets([primary, drawn]).shuffle(seed=seed)
