"""Hungarian soft-F1 between the boxes of model answers and true boxes (RadVLM-GRPO's grounding reward).

A thin `evaluate` module over `radvlm_grpo`: the scoring lives in `radvlm_grpo.metrics.soft_f1`, so the metric, the reward
and the tests share one implementation.
"""

import datasets
import evaluate
import numpy as np

from radvlm_grpo.metrics.grounding_ap import ANSWER_MAX_CHARS, boxes_from_texts
from radvlm_grpo.metrics.soft_f1 import PAPER, soft_f1_batch

_CITATION = """\
@article{gundersen2025radvlmgrpo,
  title={Enhancing Radiology Report Generation and Visual Grounding using Reinforcement Learning},
  author={Gundersen and Deperrois and Ruiperez-Campillo and Sutter and Vogt and Moor and Nooralahzadeh and
          Krauthammer},
  journal={arXiv preprint arXiv:2512.10691},
  year={2025},
  note={MIDL 2026, PMLR 315: "RadVLM-GRPO: Enhancing Chest X-ray Report Generation and Visual Grounding via
        Reinforcement Learning"}
}
"""

_DESCRIPTION = """\
Soft-F1 matches the predicted boxes of each answer one-to-one with the true boxes (Hungarian matching on 1 - IoU,
scipy.optimize.linear_sum_assignment) and scores the matched IoU mass. The default "paper" form is
2 * sum(matched IoU) / (n_pred + n_true), which equals the IoU for one box against one box; the "dev" form is the
authors' development code (precision = mass / (mass + unmatched predictions), recall = mass / n_true). No predicted
or no true box scores 0. Boxes are [x1, y1, x2, y2]; invalid boxes (non-finite, outside [0, 1], x2 <= x1 or
y2 <= y1) have IoU 0 with everything, so they count as unmatched predictions. Each answer is read up to its first
4,000 characters (the authors' evaluation cut; `max_chars`): a box written after them is not seen.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): model answers; every `[x1, y1, x2, y2]` group in the text is a predicted box.
    references (`list` of `list` of boxes, or `list` of `str`): the true boxes of each answer, as numbers
        normalised to [0, 1] (see `reference_scale`) or as reference answer texts (parsed like the predictions).
    variant (`str`, defaults to "paper"): "paper" or "dev".
    box_scale (`float`, defaults to 1): the coordinate scale of the answer texts: 1 for RadVLM's normalised boxes,
        1000 for Qwen3-VL's 0-1000 grid.
    reference_scale (`float`, defaults to 1): the scale of references given as numbers.
    thinking (`bool`, defaults to False): score only the text after the last `</think>`; an answer without
        `</think>` has no box.
    max_chars (`int` or None, defaults to 4000): read each answer up to this many characters (None: all of it).
    return_per_sample (`bool`, defaults to False): also return the score of each answer.
    An empty `predictions` list raises a ValueError (a mean over zero pairs is undefined).
Returns:
    soft_f1 (`float`): the mean soft-F1 over the answers.
    per_sample (`list` of `float`): only with `return_per_sample=True`.
Examples:
    >>> soft_f1 = evaluate.load("soft_f1")
    >>> results = soft_f1.compute(
    ...     predictions=["Cardiomegaly at [0.35, 0.51, 0.75, 0.64]"], references=[[[0.38, 0.47, 0.76, 0.62]]]
    ... )
    >>> round(results["soft_f1"], 3)
    0.596
"""

_BOXES = datasets.Sequence(datasets.Sequence(datasets.Value("float64")))


def _require_predictions(predictions) -> None:
    """A mean over zero pairs is undefined: an empty list is an error, not a score of 0 or NaN."""
    if predictions is not None and len(predictions) == 0:
        raise ValueError(
            "soft_f1: no predictions to score (an empty list). A mean over zero pairs is undefined; check the split or "
            "filter that produced them."
        )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SoftF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features({"predictions": datasets.Value("string"), "references": _BOXES}),
                datasets.Features({"predictions": datasets.Value("string"), "references": datasets.Value("string")}),
            ],
            homepage="https://arxiv.org/abs/2512.10691",
            reference_urls=["https://arxiv.org/abs/2512.10691"],
        )

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Compute the metric.

        evaluate itself fails on an empty list (IndexError) or gives NaN: an empty `predictions` list raises a
        ValueError that says so.
        """
        _require_predictions(predictions)
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(
        self,
        predictions,
        references,
        variant=PAPER,
        box_scale=1.0,
        reference_scale=1.0,
        thinking=False,
        return_per_sample=False,
        max_chars=ANSWER_MAX_CHARS,
    ):
        _require_predictions(predictions)
        preds, truths = boxes_from_texts(
            predictions, references, box_scale, reference_scale, thinking, max_chars=max_chars
        )
        scores = soft_f1_batch(preds, truths, variant)
        result = {"soft_f1": float(np.mean(scores))}
        if return_per_sample:
            result["per_sample"] = [float(s) for s in scores]
        return result
