"""RadGraph-F1 (simple, partial, complete) between generated and reference radiology reports.

A thin `evaluate` module over `radvlm_grpo.scorers.radgraph`, which reproduces the `radgraph` package (0.1.18)
with batched parsing on transformers 5.
"""

import datasets
import evaluate
import numpy as np

from radvlm_grpo.metrics.thinking import REWARD_MAX_CHARS
from radvlm_grpo.scorers.radgraph import DEFAULT_MODEL_TYPE, F1RadGraph

_CITATION = """\
@inproceedings{delbrouck-etal-2024-radgraph,
  title={RadGraph-XL: A Large-Scale Expert-Annotated Dataset for Entity and Relation Extraction from Radiology Reports},
  author={Delbrouck, Jean-Benoit and Chambon, Pierre and Chen, Zhihong and Varma, Maya and Johnston, Andrew and
          Blankemeier, Louis and Van Veen, Dave and Bui, Tan and Truong, Steven and Langlotz, Curtis},
  booktitle={Findings of the Association for Computational Linguistics: ACL 2024},
  year={2024}
}
@inproceedings{jain2021radgraph,
  title={RadGraph: Extracting Clinical Entities and Relations from Radiology Reports},
  author={Jain, Saahil and Agrawal, Ashwin and Saporta, Adriel and Truong, Steven QH and Duong, Du Nguyen and
          Bui, Tan and Chambon, Pierre and Zhang, Yuhao and Lungren, Matthew P and Ng, Andrew Y and others},
  booktitle={NeurIPS Datasets and Benchmarks},
  year={2021}
}
"""

_DESCRIPTION = """\
RadGraph-F1 parses both reports with RadGraph-XL (default, as RadVLM-GRPO evaluates) or RadGraph v1 and compares
their entities and relations as the radgraph package (0.1.18) does: "simple" compares the sets of (tokens, label)
entities, "partial" also marks entities that have relations, "complete" (RG_ER-bar, the RGF1-C of the paper's
ablation) compares one (tokens, label, relation, target tokens) item per relation, lowercased. A pair whose
prediction or reference is empty, or a report without entities, scores 0. Higher is better. Both texts are cut to
their first 2,048 characters first (`max_chars`), as the paper's RGF1 reward and RadCliQ did: RadGraph's cost grows
faster than the text, so one babbling prediction would otherwise stall the evaluation.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions (`list` of `str`): generated reports.
    references (`list` of `str`): reference reports.
    return_per_sample (`bool`, defaults to False): also return each pair's three scores.
    max_chars (`int` or None, defaults to 2048): cut each prediction and reference to this many characters first
        (None: no cut; 4000 cuts the predictions as the paper's evaluation cut its answers).
    An empty `predictions` list raises a ValueError (a mean over zero pairs is undefined).
Load-time arguments (`evaluate.load("radgraph_f1", weights_dir=..., model_type=..., device=..., batch_size=...)`):
    weights_dir: a folder holding `<model_type>/` (config.json, vocabulary/, weights.th), or the extracted archive
        itself; default: the archive from the Hugging Face Hub repository StanfordAIMI/RRG_scorers (cache first).
    model_type: "radgraph-xl" (default) or "radgraph".
    device: "cpu", "cuda"...; default: a GPU when there is one.
Returns:
    radgraph_simple, radgraph_partial, radgraph_complete (`float`): mean F1 over the pairs.
    per_sample (`dict` of `list`): only with `return_per_sample=True`, keyed like the means.
Examples:
    >>> radgraph_f1 = evaluate.load("radgraph_f1")
    >>> results = radgraph_f1.compute(predictions=["No acute process."], references=["No acute process."])
"""

KEYS = ("radgraph_simple", "radgraph_partial", "radgraph_complete")
MAX_CHARS = REWARD_MAX_CHARS  # 2048, the cut of the paper's RadGraph-F1 reward and RadCliQ


def _require_predictions(predictions) -> None:
    """A mean over zero pairs is undefined: an empty list is an error, not a score of 0 or NaN."""
    if predictions is not None and len(predictions) == 0:
        raise ValueError(
            "radgraph_f1: no predictions to score (an empty list). A mean over zero pairs is undefined; check the split or "
            "filter that produced them."
        )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RadGraphF1(evaluate.Metric):
    def __init__(self, weights_dir=None, model_type=DEFAULT_MODEL_TYPE, device=None, batch_size=32, **kwargs):
        super().__init__(**kwargs)
        self.weights_dir, self.model_type, self.device, self.batch_size = weights_dir, model_type, device, batch_size
        self.scorer = None

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            homepage="https://github.com/Stanford-AIMI/radgraph",
            codebase_urls=["https://github.com/Stanford-AIMI/radgraph"],
            reference_urls=["https://arxiv.org/abs/2106.14463", "https://arxiv.org/abs/2512.10691"],
        )

    def _download_and_prepare(self, dl_manager):
        # Load the model at `evaluate.load` time: missing weights are reported there, naming the file and its repo.
        self.scorer = F1RadGraph(self.model_type, self.weights_dir, self.device, self.batch_size)

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Compute the metric.

        evaluate itself fails on an empty list (IndexError) or gives NaN: an empty `predictions` list raises a
        ValueError that says so.
        """
        _require_predictions(predictions)
        return super().compute(predictions=predictions, references=references, **kwargs)

    def _compute(self, predictions, references, return_per_sample=False, max_chars=MAX_CHARS):
        _require_predictions(predictions)
        if max_chars is not None and (isinstance(max_chars, bool) or not isinstance(max_chars, int) or max_chars <= 0):
            raise ValueError(f"max_chars must be a positive integer or None (no cut); got {max_chars!r}.")
        if self.scorer is None:
            self._download_and_prepare(None)
        preds = [p[:max_chars] if isinstance(p, str) else "" for p in predictions]
        refs = [r[:max_chars] if isinstance(r, str) else "" for r in references]
        _, lists, _, _ = self.scorer(preds, refs, level="all")
        result = {key: float(np.mean(values)) for key, values in zip(KEYS, lists)}
        if return_per_sample:
            result["per_sample"] = {key: [float(v) for v in values] for key, values in zip(KEYS, lists)}
        return result
