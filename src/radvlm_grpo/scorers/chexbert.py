"""CheXbert on transformers 5: report [CLS] embeddings (RadCliQ's "semb"), the 14 labels, and CheXbert F1.

The upstream ``f1chexbert`` 0.0.2 package breaks on transformers 5 (``encode_plus`` is gone), cannot be pointed at
local weights, and runs one report per forward pass. This module rebuilds the same network, a BERT encoder with 14
linear heads on the [CLS] vector of its last layer (13 four-way heads: blank, positive, negative, uncertain; one
two-way head for "No Finding"), loads the official checkpoint (``chexbert.pth`` in ``StanfordAIMI/RRG_scorers``) with
the checkpoint's key layout, and runs padded batches of many reports. Labels and F1 follow f1chexbert's "rrg" mode:
a condition counts as present when its head says positive or uncertain, and F1 is scikit-learn's micro and macro
average over the 14 conditions and over the five of CheXpert's competition (a condition that is absent from both
sides scores F1 0 in the macro average, scikit-learn's ``zero_division`` default).

The embedding is the [CLS] vector of the last BERT layer before dropout and heads, as CXR-Report-Metric and RadEval
compute it; RadCliQ's ``semb`` feature is the cosine of the two reports' embeddings.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import BertConfig, BertModel, BertTokenizer

from radvlm_grpo.scorers._batching import padded_batches
from radvlm_grpo.scorers._weights import (
    RRG_SCORERS_REPO,
    describe_folder,
    hf_download_command,
    hub_file,
    local_candidates,
    missing_weights_error,
    weights_dir_or_env,
)
from radvlm_grpo.scorers._weights import resolve_device as _resolve_device

logger = logging.getLogger(__name__)

CHEXBERT_FILE = "chexbert.pth"
TOKENIZER_ID = "google-bert/bert-base-uncased"  # f1chexbert's 'bert-base-uncased' under its current Hub name
MAX_LENGTH = 512  # f1chexbert keeps the first 511 ids and appends [SEP]

CONDITIONS = (
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
    "No Finding",
)
CONDITIONS_5 = ("Cardiomegaly", "Edema", "Consolidation", "Atelectasis", "Pleural Effusion")
# Column indices of the five conditions, in CONDITIONS order (as f1chexbert selects them with np.isin).
CONDITIONS_5_INDEX = tuple(i for i, c in enumerate(CONDITIONS) if c in CONDITIONS_5)
# Head output classes. "No Finding" has only the first two.
BLANK, POSITIVE, NEGATIVE, UNCERTAIN = 0, 1, 2, 3

_WHITESPACE = re.compile(r"\s+")


class CheXbertNetwork(nn.Module):
    """BERT + 14 linear heads, with the parameter names of the official checkpoint (after its ``module.`` prefix)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.bert = BertModel(config)  # the pooler stays: the checkpoint carries its weights
        self.dropout = nn.Dropout(0.1)
        hidden = config.hidden_size
        self.linear_heads = nn.ModuleList([nn.Linear(hidden, 4) for _ in range(13)] + [nn.Linear(hidden, 2)])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[CLS] embeddings (batch, hidden) and the argmax class of every head (batch, 14)."""
        cls = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0]
        hidden = self.dropout(cls)
        classes = torch.stack([head(hidden).argmax(dim=-1) for head in self.linear_heads], dim=1)
        return cls, classes


@dataclass
class CheXbertOutput:
    """Per report: the [CLS] embedding (float32) and the predicted class of each of the 14 heads (0-3)."""

    embeddings: np.ndarray
    classes: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """f1chexbert's "rrg" labels: 1 where a condition is positive or uncertain, else 0 (int64, n x 14)."""
        return rrg_labels(self.classes)


def rrg_labels(classes: np.ndarray) -> np.ndarray:
    """f1chexbert ``get_label(mode="rrg")``: positive and uncertain count as present."""
    classes = np.asarray(classes)
    return ((classes == POSITIVE) | (classes == UNCERTAIN)).astype(np.int64)


def classification_labels(classes: np.ndarray) -> np.ndarray:
    """f1chexbert ``get_label(mode="classification")`` as floats: 1 positive, 0 negative, -1 uncertain, NaN blank."""
    table = np.array([np.nan, 1.0, 0.0, -1.0])
    return table[np.asarray(classes)]


def clean_report(text: object) -> str:
    """f1chexbert's text clean-up: whitespace runs (newlines included) become one space, ends stripped."""
    return _WHITESPACE.sub(" ", text if isinstance(text, str) else "").strip()


def find_checkpoint(checkpoint: str | os.PathLike | None = None, weights_dir: str | os.PathLike | None = None) -> Path:
    """``chexbert.pth``: an explicit path, else ``<weights_dir>/chexbert/`` or ``<weights_dir>/``, else the Hub."""
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if path.is_dir():
            path = path / CHEXBERT_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"CheXbert checkpoint {path} does not exist ({describe_folder(path.parent)}). Download it there with: "
                f"{hf_download_command(RRG_SCORERS_REPO, [CHEXBERT_FILE], local_dir=path.parent)}"
            )
        return path
    candidates = local_candidates(weights_dir, [f"chexbert/{CHEXBERT_FILE}", CHEXBERT_FILE])
    root = weights_dir_or_env(weights_dir)
    local_dir = root / "chexbert" if root is not None else None
    return hub_file(RRG_SCORERS_REPO, CHEXBERT_FILE, "CheXbert", candidates, weights_dir, local_dir)


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The network's weights from a checkpoint file: ``model_state_dict`` with DataParallel's ``module.`` removed."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model_state_dict" in state:
        state = state["model_state_dict"]
    return {k.replace("module.", ""): v for k, v in state.items()}


def _load_tokenizer(folder: Path, tokenizer: str | os.PathLike | None, weights_dir=None) -> BertTokenizer:
    source = str(tokenizer) if tokenizer is not None else (str(folder) if (folder / "vocab.txt").is_file() else None)
    if source is not None:
        return BertTokenizer.from_pretrained(source)
    try:
        return BertTokenizer.from_pretrained(TOKENIZER_ID)
    except OSError as error:
        raise missing_weights_error(
            "CheXbert tokenizer", "vocab.txt", TOKENIZER_ID, [folder / "vocab.txt"], error, weights_dir, folder
        ) from error


class CheXbert:
    """CheXbert inference on padded batches: embeddings, classes and labels of many reports at once.

    Args:
        checkpoint: ``chexbert.pth`` (or its folder); default: the weights folder, then ``StanfordAIMI/RRG_scorers``.
        weights_dir: folder holding ``chexbert/chexbert.pth`` (see ``radvlm_grpo.scorers._weights``).
        tokenizer: a bert-base-uncased tokenizer folder or Hub id; default: the checkpoint's folder when it holds a
            ``vocab.txt``, else ``bert-base-uncased`` from the Hub.
        config: the BERT geometry; default: ``config.json`` beside the checkpoint, else bert-base-uncased's
            (``BertConfig()``, which is what f1chexbert builds).
        device: "cpu", "cuda", "cuda:1"...; default: this process's GPU if any, else the CPU.
        batch_size: reports per forward pass.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        weights_dir: str | os.PathLike | None = None,
        tokenizer: str | os.PathLike | None = None,
        config: BertConfig | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 64,
    ) -> None:
        path = find_checkpoint(checkpoint, weights_dir)
        folder = path.parent
        if config is None:
            config = BertConfig.from_pretrained(folder) if (folder / "config.json").is_file() else BertConfig()
        self.tokenizer = _load_tokenizer(folder, tokenizer, weights_dir)
        self.device = _resolve_device(device)
        self.batch_size = int(batch_size)
        self.network = CheXbertNetwork(config)
        missing, unexpected = self.network.load_state_dict(load_state_dict(path), strict=False)
        missing = [k for k in missing if not k.startswith("bert.pooler.")]
        if missing:
            raise ValueError(f"{path} is not a CheXbert checkpoint: it lacks {missing[:5]} ({len(missing)} keys).")
        unexpected = [k for k in unexpected if not k.endswith("position_ids")]
        if unexpected:
            logger.warning("CheXbert checkpoint %s has unused keys: %s", path, unexpected[:5])
        self.network.to(self.device).eval().requires_grad_(False)
        self.checkpoint = path
        self.forward_calls = 0  # forward passes run (tests count them to check batching and caching)

    def tokenize(self, reports: Sequence[str]) -> list[list[int]]:
        """Token ids as f1chexbert builds them: cleaned text, [CLS] ... [SEP], at most 512 ids; "" is [CLS][SEP]."""
        cleaned = [clean_report(r) for r in reports]
        if not cleaned:
            return []
        return self.tokenizer(cleaned, truncation=True, max_length=MAX_LENGTH)["input_ids"]

    @torch.inference_mode()
    def encode(self, reports: Sequence[str]) -> CheXbertOutput:
        """Embeddings and classes of every report; each distinct report is run once, in length-sorted batches."""
        reports = [r if isinstance(r, str) else "" for r in reports]
        unique = list(dict.fromkeys(reports))
        ids = self.tokenize(unique)
        hidden = self.network.bert.config.hidden_size
        embeddings = np.zeros((len(unique), hidden), dtype=np.float32)
        classes = np.zeros((len(unique), len(CONDITIONS)), dtype=np.int64)
        pad = self.tokenizer.pad_token_id or 0
        for batch, input_ids, mask in padded_batches(ids, self.batch_size, pad):
            cls, cls_classes = self.network(input_ids.to(self.device), mask.to(self.device))
            self.forward_calls += 1
            embeddings[batch] = cls.float().cpu().numpy()
            classes[batch] = cls_classes.cpu().numpy()
        index = {text: i for i, text in enumerate(unique)}
        rows = [index[r] for r in reports]
        return CheXbertOutput(embeddings[rows], classes[rows])

    def embeddings(self, reports: Sequence[str]) -> np.ndarray:
        """[CLS] embeddings, one row per report (float32)."""
        return self.encode(reports).embeddings

    def labels(self, reports: Sequence[str]) -> np.ndarray:
        """The 14 "rrg" labels per report (1 present or uncertain, else 0)."""
        return self.encode(reports).labels

    def f1(self, hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
        """CheXbert F1 of hypotheses against references (see ``chexbert_f1``)."""
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references.")
        out = self.encode(list(hyps) + list(refs)).labels
        return chexbert_f1(out[: len(hyps)], out[len(hyps) :])


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity, 0 where a norm is 0 (RadCliQ's semb as RadEval computes it)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    dot = np.einsum("nd,nd->n", a, b)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, dot / np.where(norms > 0, norms, 1.0), 0.0)


def _f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denominator = 2 * tp + fp + fn
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)


def _prf(hyp: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    tp = (hyp & ref).sum(0).astype(np.float64)
    fp = (hyp & ~ref).sum(0).astype(np.float64)
    fn = (~hyp & ref).sum(0).astype(np.float64)
    per_class = _f1_from_counts(tp, fp, fn)
    micro_tp, micro_fp, micro_fn = tp.sum(), fp.sum(), fn.sum()
    return {
        "micro_precision": float(micro_tp / (micro_tp + micro_fp)) if micro_tp + micro_fp else 0.0,
        "micro_recall": float(micro_tp / (micro_tp + micro_fn)) if micro_tp + micro_fn else 0.0,
        "micro_f1": float(_f1_from_counts(micro_tp, micro_fp, micro_fn)),
        "macro_f1": float(per_class.mean()) if per_class.size else 0.0,
    }


def chexbert_f1(hyp_labels: np.ndarray, ref_labels: np.ndarray) -> dict[str, float]:
    """CheXbert F1 from 0/1 label matrices (n x 14), as f1chexbert's scikit-learn ``classification_report``.

    Returns ``chexbert_{micro,macro}_f1_{14,5}``, the micro precision and recall, and ``chexbert_accuracy_5`` (share
    of reports whose five labels all match, f1chexbert's "accuracy").
    """
    hyp = np.asarray(hyp_labels).astype(bool)
    ref = np.asarray(ref_labels).astype(bool)
    if hyp.shape != ref.shape or hyp.ndim != 2 or hyp.shape[1] != len(CONDITIONS):
        raise ValueError(f"Expected two (n, 14) label matrices; got {hyp.shape} and {ref.shape}.")
    result = {}
    for suffix, columns in (("14", slice(None)), ("5", list(CONDITIONS_5_INDEX))):
        for key, value in _prf(hyp[:, columns], ref[:, columns]).items():
            result[f"chexbert_{key}_{suffix}"] = value
    five = list(CONDITIONS_5_INDEX)
    result["chexbert_accuracy_5"] = float((hyp[:, five] == ref[:, five]).all(axis=1).mean()) if len(hyp) else 0.0
    return result
