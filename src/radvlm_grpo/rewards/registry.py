"""The reward registry: recipe names to reward factories, and ``get_reward_funcs`` that builds them with a recipe's
options. It imports every family; no reward module imports it back."""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence

from radvlm_grpo.rewards.base import RewardFunc
from radvlm_grpo.rewards.clinical import bertscore_reward, radcliq_reward, radgraph_f1_reward
from radvlm_grpo.rewards.demo import digit_share_reward, finding_f1_reward
from radvlm_grpo.rewards.grounding import iou_reward, soft_f1_reward
from radvlm_grpo.rewards.text import bleu_reward, gleu_reward, rouge_l_reward

REWARD_REGISTRY: dict[str, Callable[..., RewardFunc]] = {
    "soft_f1": soft_f1_reward,
    "iou": iou_reward,
    "gleu": gleu_reward,
    "bleu": bleu_reward,
    "rouge_l": rouge_l_reward,
    # The clinical scorers' models load only when a reward is built.
    "radcliq": radcliq_reward,
    "bertscore": bertscore_reward,
    "radgraph_f1": radgraph_f1_reward,
    # Demo rewards: the tiny model and synthetic reports only (radvlm_grpo.rewards.demo).
    "digit_share": digit_share_reward,
    "finding_f1": finding_f1_reward,
}


def register_reward(name: str, factory: Callable[..., RewardFunc], overwrite: bool = False) -> None:
    """Add a reward factory (keyword options in, reward callable out) under ``name``."""
    if name in REWARD_REGISTRY and not overwrite:
        raise ValueError(f"A reward named {name!r} is already registered.")
    REWARD_REGISTRY[name] = factory


def _options_of(factory: Callable) -> set[str]:
    return {
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.kind is p.KEYWORD_ONLY or p.default is not p.empty
    }


def _import_reward(path: str) -> RewardFunc:
    """TRL's fallback: ``package.module.function`` imported with the working directory on ``sys.path``."""
    module_path, attr = path.rsplit(".", 1)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return getattr(importlib.import_module(module_path), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"Could not import the reward function {path!r}: {error}") from error


def get_reward_funcs(names: Sequence[str], **options) -> list[RewardFunc]:
    """The reward callables for ``names`` (registry names or dotted import paths), built with ``options``.

    Options (``None`` means the default): ``box_scale`` (1 for RadVLM boxes, 1000 for Qwen3-VL's grid), ``thinking``
    (score the answer after ``</think>``; penalise its absence), ``soft_f1_variant`` ("paper" or "dev"),
    ``grounding_occurrence`` (default "first") and ``report_occurrence`` (default "last") of ``</think>``,
    ``bleu_max_order``, ``rouge_use_stemmer``. An option no registered reward knows is an error (a typo in a recipe
    should not pass silently).
    """
    if isinstance(names, str):
        names = [names]
    options = {k: v for k, v in options.items() if v is not None}
    known = set().union(*(_options_of(f) for f in REWARD_REGISTRY.values()))
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"Unknown reward option(s) {unknown}; known options are {sorted(known)}.")
    funcs = []
    for name in names:
        if name in REWARD_REGISTRY:
            factory = REWARD_REGISTRY[name]
            accepted = _options_of(factory)
            funcs.append(factory(**{k: v for k, v in options.items() if k in accepted}))
        elif "." in name:
            funcs.append(_import_reward(name))
        else:
            raise ValueError(
                f"Unknown reward {name!r}. Expected one of {sorted(REWARD_REGISTRY)} or a dotted import path "
                "(package.module.function)."
            )
    return funcs
