"""RadVLM's grounding mAP@0.5 and average IoU (the metrics of RadVLM-GRPO's Table 2).

A thin `evaluate` module over `radvlm_grpo.metrics.grounding_ap`, where the definitions are documented and tested.
"""

import datasets
import evaluate

from radvlm_grpo.metrics.grounding_ap import ANSWER_MAX_CHARS, boxes_from_texts, coco_ap, grounding_map

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
RadVLM's per-sample mAP: the predicted boxes of each answer, in output order and without confidences, are matched to
their argmax-IoU true box when that IoU reaches the threshold and the true box is still free; the sample's AP is the
VOC all-point area under its precision/recall curve; a sample without predicted boxes has AP 0; mAP is the mean over
samples. avg_iou is the mean IoU of every (predicted, true) pair, pooled over the samples that have both. Each answer
is read up to its first 4,000 characters (the authors' evaluation cut; `max_chars`): a box written after them is not
seen.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): model answers; every `[x1, y1, x2, y2]` group in the text is a predicted box.
    references (`list` of `list` of boxes, or `list` of `str`): the true boxes of each answer, as numbers
        normalised to [0, 1] (see `reference_scale`) or as reference answer texts (parsed like the predictions).
    iou_threshold (`float`, defaults to 0.5): the IoU a match needs; the key is "map_50" for 0.5, "map_75" for 0.75.
    box_scale (`float`, defaults to 1): the coordinate scale of the answer texts (1000 for Qwen3-VL's grid).
    reference_scale (`float`, defaults to 1): the scale of references given as numbers.
    thinking (`bool`, defaults to False): score only the text after the last `</think>`; an answer without
        `</think>` has no box.
    max_chars (`int` or None, defaults to 4000): read each answer up to this many characters (None: all of it).
    return_per_sample (`bool`, defaults to False): also return each answer's AP.
    return_coco (`bool`, defaults to False): also return the dataset-level COCO-style coco_ap, coco_ap50, coco_ap75.
    An empty `predictions` list raises a ValueError (a mean over zero pairs is undefined).
Returns:
    map_50 (`float`), avg_iou (`float`), and per_sample / coco_* when asked.
Examples:
    >>> grounding_map = evaluate.load("grounding_map")
    >>> results = grounding_map.compute(
    ...     predictions=["Cardiomegaly at [0.35, 0.51, 0.75, 0.64]"], references=[[[0.38, 0.47, 0.76, 0.62]]]
    ... )
    >>> results["map_50"], round(results["avg_iou"], 3)
    (1.0, 0.596)
"""

_BOXES = datasets.Sequence(datasets.Sequence(datasets.Value("float64")))


def _require_predictions(predictions) -> None:
    """A mean over zero pairs is undefined: an empty list is an error, not a score of 0 or NaN."""
    if predictions is not None and len(predictions) == 0:
        raise ValueError(
            "grounding_map: no predictions to score (an empty list). A mean over zero pairs is undefined; check the split or "
            "filter that produced them."
        )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class GroundingMap(evaluate.Metric):
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
        iou_threshold=0.5,
        box_scale=1.0,
        reference_scale=1.0,
        thinking=False,
        return_per_sample=False,
        return_coco=False,
        max_chars=ANSWER_MAX_CHARS,
    ):
        _require_predictions(predictions)
        preds, truths = boxes_from_texts(
            predictions, references, box_scale, reference_scale, thinking, max_chars=max_chars
        )
        result = grounding_map(preds, truths, iou_threshold)
        if not return_per_sample:
            result.pop("per_sample")
        if return_coco:
            result.update(coco_ap(preds, truths))
        return result
