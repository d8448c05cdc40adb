"""RadCliQ-v1, the composite radiology report metric that RadVLM-GRPO trains on (lower is better).

A thin `evaluate` module over `radvlm_grpo.scorers.radcliq`, where the features, constants and batching are
documented and tested against the upstream packages.
"""

import datasets
import evaluate
import numpy as np

from radvlm_grpo.scorers.radcliq import DEFAULT_RADGRAPH_MODEL, FEATURES, RadCliQ, radcliq_from_features

_CITATION = """\
@article{yu2023evaluating,
  title={Evaluating progress in automatic chest X-ray radiology report generation},
  author={Yu, Feiyang and Endo, Mark and Krishnan, Rayan and Pan, Ian and Tsai, Andy and Reis, Eduardo Pontes and
          Fonseca, Eduardo Kaiser Ururahy Nunes and Lee, Henrique Min Ho and Abidin, Zahra Shakeri Hossein and
          Gatti, Andre and others},
  journal={Patterns},
  volume={4},
  number={9},
  year={2023}
}
"""

_DESCRIPTION = """\
RadCliQ-v1 (Yu et al. 2023) combines four similarities between a generated and a reference chest X-ray report:
RadGraph entity/relation F1 (RadGraph-XL by default, as RadVLM-GRPO trained; "radgraph" for CXR-Report-Metric's
model), BERTScore (distilroberta-base layer 5, baseline-rescaled, idf off), the cosine of the CheXbert [CLS]
embeddings, and BLEU-2. Each feature is standardised and weighted with CXR-Report-Metric's RadCliQ-v1 constants
(full precision). Lower is better; an exact match scores -1.44069. With protocol="paper" (default) the texts are
lowercased and cut to 2048 characters and a pair whose prediction or reference has 5 characters or fewer scores 3,
as in RadVLM-GRPO's evaluation; protocol="plain" scores the texts as given.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): generated reports.
    references (`list` of `str`): reference reports.
    protocol (`str`, defaults to "paper"): "paper" (lowercase, 2048 characters, 3 for texts of 5 characters or
        fewer) or "plain" (texts as given).
    return_per_sample (`bool`, defaults to False): also return each pair's RadCliQ.
    return_features (`bool`, defaults to False): also return the four raw features of each pair.
    An empty `predictions` list raises a ValueError (a mean over zero pairs is undefined).
Load-time arguments (`evaluate.load("radcliq", weights_dir=..., radgraph_model=..., device=..., batch_size=...)`):
    weights_dir: a folder with local weights (`radgraph-xl/`, `chexbert/chexbert.pth`, `bertscore/distilroberta-base/`);
        anything not there is taken from the Hugging Face Hub cache (StanfordAIMI/RRG_scorers,
        distilbert/distilroberta-base, google-bert/bert-base-uncased).
    radgraph_model: "radgraph-xl" (default) or "radgraph".
    device: "cpu", "cuda"...; default: a GPU when there is one.
Returns:
    radcliq (`float`): the mean RadCliQ-v1 over the pairs. Lower is better.
    per_sample (`list` of `float`): only with `return_per_sample=True`.
    features (`dict` of `list`): only with `return_features=True` (radgraph, bertscore, semb, bleu).
Examples:
    >>> radcliq = evaluate.load("radcliq")
    >>> results = radcliq.compute(predictions=["No acute process."], references=["No acute process."])
"""

PAPER_MAX_CHARS = 2048
PAPER_MIN_CHARS = 5
PAPER_PENALTY = 3.0


def _require_predictions(predictions) -> None:
    """A mean over zero pairs is undefined: an empty list is an error, not a score of 0 or NaN."""
    if predictions is not None and len(predictions) == 0:
        raise ValueError(
            "radcliq: no predictions to score (an empty list). A mean over zero pairs is undefined; check the split or "
            "filter that produced them."
        )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RadCliQv1(evaluate.Metric):
    def __init__(self, weights_dir=None, radgraph_model=DEFAULT_RADGRAPH_MODEL, device=None, batch_size=32, **kwargs):
        super().__init__(**kwargs)
        self.weights_dir, self.radgraph_model, self.device, self.batch_size = (
            weights_dir,
            radgraph_model,
            device,
            batch_size,
        )
        self.scorer = None

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            homepage="https://github.com/rajpurkarlab/CXR-Report-Metric",
            codebase_urls=["https://github.com/rajpurkarlab/CXR-Report-Metric"],
            reference_urls=["https://doi.org/10.1016/j.patter.2023.100802", "https://arxiv.org/abs/2512.10691"],
        )

    def _download_and_prepare(self, dl_manager):
        # Load the models at `evaluate.load` time: missing weights are reported there, naming the file and its repo.
        self.scorer = RadCliQ(self.radgraph_model, self.weights_dir, self.device, self.batch_size)

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Compute the metric.

        evaluate itself fails on an empty list (IndexError) or gives NaN: an empty `predictions` list raises a
        ValueError that says so.
        """
        _require_predictions(predictions)
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references, protocol="paper", return_per_sample=False, return_features=False):
        if protocol not in ("paper", "plain"):
            raise ValueError(f"protocol must be 'paper' or 'plain'; got {protocol!r}.")
        _require_predictions(predictions)
        if self.scorer is None:
            self._download_and_prepare(None)
        preds = [p if isinstance(p, str) else "" for p in predictions]
        refs = [r if isinstance(r, str) else "" for r in references]
        scored = list(range(len(preds)))
        if protocol == "paper":
            preds = [p[:PAPER_MAX_CHARS].lower() for p in preds]
            refs = [r[:PAPER_MAX_CHARS].lower() for r in refs]
            scored = [i for i in scored if len(preds[i]) > PAPER_MIN_CHARS and len(refs[i]) > PAPER_MIN_CHARS]
        values = np.full(len(preds), PAPER_PENALTY)
        features = {k: np.full(len(preds), np.nan) for k in FEATURES}
        if scored:
            found = self.scorer.features([preds[i] for i in scored], [refs[i] for i in scored])
            for key in FEATURES:
                features[key][scored] = found[key]
            values[scored] = radcliq_from_features(*(found[k] for k in FEATURES))
        result = {"radcliq": float(np.mean(values))}
        if return_per_sample:
            result["per_sample"] = [float(v) for v in values]
        if return_features:
            result["features"] = {k: [None if np.isnan(x) else float(x) for x in v] for k, v in features.items()}
        return result
