"""CheXbert F1: micro and macro F1 of the 14 CheXbert labels (and the 5 competition conditions) of generated reports
against those of the reference reports.

A thin `evaluate` module over `radvlm_grpo.scorers.chexbert`, which reproduces f1chexbert (0.0.2) with batched
inference on transformers 5.
"""

import datasets
import evaluate

from radvlm_grpo.scorers.chexbert import CheXbert, chexbert_f1

_CITATION = """\
@inproceedings{smit2020chexbert,
  title={Combining Automatic Labelers and Expert Annotations for Accurate Radiology Report Labeling Using BERT},
  author={Smit, Akshay and Jain, Saahil and Rajpurkar, Pranav and Pareek, Anuj and Ng, Andrew Y and Lungren, Matthew},
  booktitle={Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)},
  pages={1500--1519},
  year={2020}
}
"""

_DESCRIPTION = """\
CheXbert labels each report for 14 observations (Enlarged Cardiomediastinum, Cardiomegaly, Lung Opacity, Lung Lesion,
Edema, Consolidation, Pneumonia, Atelectasis, Pneumothorax, Pleural Effusion, Pleural Other, Fracture, Support
Devices, No Finding); as in f1chexbert's "rrg" mode an observation counts as present when labelled positive or
uncertain. The predicted reports' labels are scored against the references' with scikit-learn's micro and macro F1
over all 14 observations and over the five of the CheXpert competition (Cardiomegaly, Edema, Consolidation,
Atelectasis, Pleural Effusion); an observation absent from both sides scores 0 in the macro average. Higher is
better.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): generated reports.
    references (`list` of `str`): reference reports.
    return_labels (`bool`, defaults to False): also return the 0/1 labels of every report (14 per report).
    An empty `predictions` list raises a ValueError (a mean over zero pairs is undefined).
Load-time arguments (`evaluate.load("chexbert_f1", weights_dir=..., device=..., batch_size=...)`):
    weights_dir: a folder holding `chexbert/chexbert.pth` (and optionally the bert-base-uncased tokenizer files next
        to it); default: chexbert.pth from the Hugging Face Hub repository StanfordAIMI/RRG_scorers (cache first).
    device: "cpu", "cuda"...; default: a GPU when there is one.
Returns:
    chexbert_micro_f1_14, chexbert_macro_f1_14, chexbert_micro_f1_5, chexbert_macro_f1_5 (`float`),
    chexbert_micro_precision_14, chexbert_micro_recall_14, chexbert_micro_precision_5, chexbert_micro_recall_5,
    chexbert_accuracy_5 (`float`): the share of pairs whose five labels all agree.
    prediction_labels, reference_labels (`list` of `list` of `int`): only with `return_labels=True`.
Examples:
    >>> chexbert_f1 = evaluate.load("chexbert_f1")
    >>> results = chexbert_f1.compute(predictions=["Mild cardiomegaly."], references=["The heart is enlarged."])
"""


def _require_predictions(predictions) -> None:
    """A mean over zero pairs is undefined: an empty list is an error, not a score of 0 or NaN."""
    if predictions is not None and len(predictions) == 0:
        raise ValueError(
            "chexbert_f1: no predictions to score (an empty list). A mean over zero pairs is undefined; check the split or "
            "filter that produced them."
        )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class CheXbertF1(evaluate.Metric):
    def __init__(self, weights_dir=None, device=None, batch_size=64, **kwargs):
        super().__init__(**kwargs)
        self.weights_dir, self.device, self.batch_size = weights_dir, device, batch_size
        self.scorer = None

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            homepage="https://github.com/stanfordmlgroup/CheXbert",
            codebase_urls=["https://github.com/stanfordmlgroup/CheXbert"],
            reference_urls=["https://arxiv.org/abs/2004.09167", "https://arxiv.org/abs/2512.10691"],
        )

    def _download_and_prepare(self, dl_manager):
        # Load the model at `evaluate.load` time: missing weights are reported there, naming the file and its repo.
        self.scorer = CheXbert(weights_dir=self.weights_dir, device=self.device, batch_size=self.batch_size)

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Compute the metric.

        evaluate itself fails on an empty list (IndexError) or gives NaN: an empty `predictions` list raises a
        ValueError that says so.
        """
        _require_predictions(predictions)
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references, return_labels=False):
        _require_predictions(predictions)
        if self.scorer is None:
            self._download_and_prepare(None)
        preds = [p if isinstance(p, str) else "" for p in predictions]
        refs = [r if isinstance(r, str) else "" for r in references]
        labels = self.scorer.encode(preds + refs).labels
        hyp_labels, ref_labels = labels[: len(preds)], labels[len(preds) :]
        result = chexbert_f1(hyp_labels, ref_labels)
        if return_labels:
            result["prediction_labels"] = hyp_labels.tolist()
            result["reference_labels"] = ref_labels.tolist()
        return result
