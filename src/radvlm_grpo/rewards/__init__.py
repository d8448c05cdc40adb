"""Reward functions for TRL's ``GRPOTrainer``, chosen by name from a recipe (``reward_funcs: [soft_f1]``).

Each reward is a picklable callable ``(completions, **columns) -> list[float | None]`` whose ``__name__`` is its
registry name (TRL logs ``rewards/<name>/mean``). It reads the dataset columns it needs by name (``boxes``,
``solution``, ``task``), accepts completions in TRL's conversational form (``[[{"role": "assistant", "content":
"..."}], ...]``) or as plain strings, and never raises on model output: a malformed completion gets the reward's
documented penalty. Rows whose ``task`` the reward does not handle get ``None``, which TRL ignores, so one multi-task
dataset can carry several rewards. Sub-scores go to TRL's ``log_metric`` when it is passed.

| name | handles | score | penalty (method.md 2.2, 2.4) |
|---|---|---|---|
| ``soft_f1`` | grounding tasks | Hungarian soft-F1 (paper form; ``soft_f1_variant: dev`` for the authors' code form) | 0 |
| ``iou`` | grounding tasks | summed Hungarian-matched IoU / max(P, G) (the IoU for one box against one) | 0 |
| ``gleu`` | report generation | sentence Google-BLEU, as ``evaluate``'s google_bleu | 0 |
| ``bleu`` | report generation | sentence BLEU-4 (13a tokens, NLTK smoothing method1) | 0 |
| ``rouge_l`` | report generation | ROUGE-L F-measure (rouge-score) | 0 |

The penalty is given when a thinking completion has no ``</think>`` and, for the grounding rewards, when the answer is
empty; an answer with no box scores 0 by the soft-F1 rule. A completion that is not text (``None``, a number, an odd
message structure) is read as empty. A row whose ground truth is missing gets ``None``. The clinical rewards
``radcliq`` (-RadCliQ-v1, the paper's report reward), ``bertscore`` and ``radgraph_f1`` (the Table 3 ablations) live in
``radvlm_grpo.rewards.clinical``.

Every reward reads at most the first 65,536 characters of an answer (``metrics.thinking.SAFETY_MAX_CHARS``, not from the
paper: real completions are far shorter, so it only bounds the cost of pathological text); the clinical rewards then
cut answer and reference to 2,048 (their ``report_max_chars``). True boxes from a float32 ``boxes`` column are
matched as they were written (``vocab.boxes.undo_float32_storage``), so an exact answer scores exactly 1.

Modules: ``base`` (what every reward shares), one per family (``grounding``, ``text``, ``clinical``, ``demo``), and ``registry``
(names to factories, ``get_reward_funcs``), which imports the families and is imported by none of them.
"""

from radvlm_grpo.rewards.base import RewardFunc, completion_text
from radvlm_grpo.rewards.registry import REWARD_REGISTRY, get_reward_funcs, register_reward

__all__ = ["REWARD_REGISTRY", "RewardFunc", "completion_text", "get_reward_funcs", "register_reward"]
