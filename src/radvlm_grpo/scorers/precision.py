"""Non-exact precision for the reward scorers (``scorer_dtype``): faster rewards that rank completions as fp32 does.

RadCliQ's three encoders are exact in float32, and evaluation always uses float32. For rewards, GRPO only needs each
group's completions ranked as float32 ranks them (its advantages are ranks within a group of G, standardised), so a
reward may run part of the arithmetic at lower precision:

- ``float32`` (default): exact; the upstream goldens hold.
- ``tf32``: CheXbert's and BERTScore's matrix multiplications in TF32 on CUDA GPUs (Ampere and newer), switched on only
  inside those two models' forward passes, so the policy's training is not affected. On a CPU it changes nothing.
- ``bfloat16``: CheXbert's and BERTScore's weights and activations in bfloat16 (embeddings go back to float32 before
  the cosine and the greedy matching).

RadGraph stays in float32 in every mode: its span labels and relations are argmax decisions, which lower precision
flips often enough to reorder completions within a group, while CheXbert's [CLS] cosine and BERTScore's greedy matching
move smoothly. ``benchmarks/reward_throughput.py --dtypes`` measures each mode's agreement with float32 (the largest
change of RadCliQ and the within-group Spearman correlation of the rewards); the README gives the figures.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

logger = logging.getLogger(__name__)

FLOAT32, TF32, BFLOAT16 = "float32", "tf32", "bfloat16"
SCORER_DTYPES = (FLOAT32, TF32, BFLOAT16)


def check_scorer_dtype(name: object) -> str:
    """``name`` if it is one of ``SCORER_DTYPES``, else a ValueError naming them."""
    if name not in SCORER_DTYPES:
        raise ValueError(f"scorer_dtype must be one of {', '.join(SCORER_DTYPES)}; got {name!r}.")
    return str(name)


@contextmanager
def cuda_matmul_precision(tf32: bool) -> Iterator[None]:
    """CUDA float32 matmuls in TF32 (``True``) or exact IEEE float32 (``False``) for the duration, then the previous
    setting back, also on an exception. Through torch's ``fp32_precision`` API: a recipe's ``tf32: true`` sets that
    API, after which reading the legacy ``allow_tf32`` flag raises."""
    matmul = torch.backends.cuda.matmul
    previous = matmul.fp32_precision
    matmul.fp32_precision = "tf32" if tf32 else "ieee"
    try:
        yield
    finally:
        matmul.fp32_precision = previous


def _tf32_inside(module: torch.nn.Module) -> None:
    """TF32 CUDA matmuls during ``module``'s forward pass only (the policy's training in the same process keeps its
    own setting)."""
    forward = module.forward

    @functools.wraps(forward)
    def tf32_forward(*args, **kwargs):
        with cuda_matmul_precision(tf32=True):
            return forward(*args, **kwargs)

    module.forward = tf32_forward


def set_precision(modules: Iterable[torch.nn.Module], dtype: str) -> None:
    """Run ``modules`` (encoders whose outputs the scorers turn back into float32) at ``dtype``."""
    dtype = check_scorer_dtype(dtype)
    for module in modules:
        if dtype == BFLOAT16:
            module.to(torch.bfloat16)
        elif dtype == TF32:
            parameter = next(module.parameters(), None)
            device = parameter.device if parameter is not None else torch.device("cpu")
            if device.type != "cuda" or torch.cuda.get_device_capability(device)[0] < 8:
                logger.warning(
                    "scorer_dtype tf32 changes nothing on %s: TF32 needs an Ampere or newer CUDA GPU; the scorer "
                    "runs in exact float32 (bfloat16 is the faster mode there).",
                    device,
                )
            _tf32_inside(module)


def set_scorer_dtype(scorer: object, dtype: str) -> None:
    """Apply ``scorer_dtype`` to a ``RadCliQ``, ``BERTScore`` or ``CheXbert`` scorer: its CheXbert and BERTScore models
    (a RadCliQ's RadGraph stays float32)."""
    from radvlm_grpo.scorers.bertscore import BERTScore
    from radvlm_grpo.scorers.chexbert import CheXbert
    from radvlm_grpo.scorers.radcliq import RadCliQ

    if isinstance(scorer, RadCliQ):
        modules = [scorer.bertscore.model, scorer.chexbert.network]
    elif isinstance(scorer, BERTScore):
        modules = [scorer.model]
    elif isinstance(scorer, CheXbert):
        modules = [scorer.network]
    else:
        raise TypeError(
            f"scorer_dtype applies to RadCliQ, BERTScore and CheXbert scorers, not {type(scorer).__name__}."
        )
    set_precision(modules, dtype)
