"""BERTScore F1 (idf off, baseline-rescaled) on transformers 5, equal to bert-score 0.3.13 on transformers 4.57.

bert-score 0.3.13 still runs on transformers 5 but drifts silently: RoBERTa's tokenizer no longer honours the
``add_prefix_space=True`` that bert-score passes per call, so the first word is split differently, and empty strings
crash (metrics.md section 3). This module re-states bert-score's rules on our stack:

- tokens: the text stripped, then ``[CLS] ... [SEP]`` (``<s> ... </s>`` with a prefix space for RoBERTa) truncated to
  the model's 512 positions; an empty text is just the two special tokens. Special-token strings written inside a
  text (``<mask>``, ``</s>``, ``[SEP]``...) are split out as bert-score's slow tokenizers split them (for RoBERTa:
  one prefix space before the whole text, none after each special token, and ``<mask>`` absorbing the whitespace
  before it), since a policy can learn to write them;
- the model keeps its first ``num_layers`` layers (bert-score's ``model2layers``: 5 for distilroberta-base, RadCliQ's
  model, and for distilbert-base-uncased, the paper's evaluation metric) and the last kept layer's output is used;
- greedy matching on cosine similarity: each hypothesis token (specials weigh 0, every other token 1) takes its best
  match among all reference tokens (specials included), and the other way round; F1 = 2PR / (P + R);
- an empty hypothesis or reference scores P = R = 0; an undefined F1 is 0;
- rescaling ``(x - b) / (1 - b)`` with bert-score's baseline ``b`` for that model and layer, in float32.

Embeddings are per sentence (attention-masked), so a sentence is embedded once however many pairs it is in, and its
embedding can be cached: ``embed`` and ``score_embeddings`` are the two halves that ``radvlm_grpo.scorers.radcliq``
uses to encode each reference once.

The baseline files are read from an installed ``bert_score`` package when there is one, else from the copies shipped
in ``bertscore_baselines/`` (bert-score, MIT licence; see the README there).
"""

from __future__ import annotations

import csv
import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import AddedToken, pre_tokenizers
from torch.nn.utils.rnn import pad_sequence
from transformers import AutoModel, AutoTokenizer

from radvlm_grpo.scorers._batching import padded_batches
from radvlm_grpo.scorers._weights import (
    local_candidates,
    missing_weights_error,
    model_source,
    resolve_device,
    weights_dir_or_env,
)

RADCLIQ_MODEL = "distilroberta-base"  # RadCliQ-v1's BERTScore (CXR-Report-Metric)
EVAL_MODEL = "distilbert-base-uncased"  # the paper's BERTScore metric and ablation reward (vilmedic)
# bert-score 0.3.13 ``model2layers`` for the models this project uses.
DEFAULT_LAYERS = {
    "distilroberta-base": 5,
    "distilbert-base-uncased": 5,
    "roberta-base": 10,
    "roberta-large": 17,
    "bert-base-uncased": 9,
}
# Where each short name lives on the Hub today (the legacy ids redirect there).
HUB_IDS = {
    "distilroberta-base": "distilbert/distilroberta-base",
    "distilbert-base-uncased": "distilbert/distilbert-base-uncased",
    "roberta-base": "FacebookAI/roberta-base",
    "roberta-large": "FacebookAI/roberta-large",
    "bert-base-uncased": "google-bert/bert-base-uncased",
}
# What ``from_pretrained`` reads of those repositories (config, tokenizer files, safetensors weights).
HUB_MODEL_FILES = ("*.json", "*.txt", "*.safetensors")
MAX_LENGTH = 512  # bert-score truncates to tokenizer.model_max_length, 512 for these models
SHIPPED_BASELINES = Path(__file__).resolve().parent / "bertscore_baselines"
# Byte-level BPE tokenizers, for which bert-score asks for a prefix space.
_PREFIX_SPACE_TYPES = ("roberta", "gpt2", "bart", "longformer", "camembert", "xlm-roberta")


def baseline_file(model_type: str, lang: str = "en") -> Path:
    """bert-score's rescale baseline for ``model_type``: the installed package's copy, else ours."""
    spec = importlib.util.find_spec("bert_score")
    candidates = []
    if spec is not None and spec.submodule_search_locations:
        candidates += [
            Path(p) / "rescale_baseline" / lang / f"{model_type}.tsv" for p in spec.submodule_search_locations
        ]
    candidates.append(SHIPPED_BASELINES / lang / f"{model_type}.tsv")
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"No BERTScore baseline for {model_type!r} ({lang}); looked in {[str(p) for p in candidates]}. "
        "Install bert-score or pass baseline_path."
    )


def load_baseline(path: str | os.PathLike, num_layers: int) -> torch.Tensor:
    """The (P, R, F) baseline row of layer ``num_layers`` (the row at that position, as bert-score reads it)."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], [r for r in rows[1:] if r]
    if [h.strip() for h in header[1:4]] != ["P", "R", "F"]:
        raise ValueError(f"{path}: expected the columns LAYER,P,R,F; got {header}.")
    if not 0 <= num_layers < len(body):
        raise ValueError(f"{path} has no row for layer {num_layers}.")
    return torch.tensor([float(v) for v in body[num_layers][1:4]], dtype=torch.float64).float()


@dataclass
class SentenceEmbedding:
    """One sentence's token embeddings, L2-normalised (L x d, float32), and the token weights (1, specials 0)."""

    embeddings: torch.Tensor
    weights: torch.Tensor

    @property
    def is_empty(self) -> bool:
        """Only the two special tokens: bert-score's "empty sentence"."""
        return self.embeddings.shape[0] == 2


@dataclass
class BERTScoreResult:
    """Per pair precision, recall and F1 (float32 arrays; rescaled when the scorer rescales)."""

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray


def _split_like_slow_byte_level(tokenizer) -> bool:
    """Make a byte-level BPE tokenizer split text as bert-score's slow ``RobertaTokenizer`` did on transformers 4.

    The slow tokenizer added one space before the whole text and none after a special token inside it, and its
    ``<mask>`` stripped the whitespace on its left; the transformers 5 tokenizer prefixes a space to every segment
    between special tokens and keeps the space before ``<mask>`` ("Small <mask> effusion." then scores 0.48 upstream
    and -0.38 here on the fixture weights). Returns False (and changes nothing) for other tokenizers.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None or not isinstance(backend.pre_tokenizer, pre_tokenizers.ByteLevel):
        return False
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if tokenizer.mask_token is not None:
        mask = AddedToken(str(tokenizer.mask_token), lstrip=True, rstrip=False, normalized=False, special=True)
        backend.add_special_tokens([mask])
    return True


def _truncate_layers(model: torch.nn.Module, num_layers: int) -> None:
    """Keep the first ``num_layers`` transformer layers, as bert-score's ``get_model`` does."""
    if hasattr(model, "encoder") and hasattr(model.encoder, "layer"):  # BERT, RoBERTa
        layers = model.encoder.layer
        holder, attr = model.encoder, "layer"
    elif hasattr(model, "transformer") and hasattr(model.transformer, "layer"):  # DistilBERT
        layers = model.transformer.layer
        holder, attr = model.transformer, "layer"
    else:
        raise ValueError(f"Cannot select layers of a {type(model).__name__}.")
    if not 0 <= num_layers <= len(layers):
        raise ValueError(f"num_layers must be between 0 and {len(layers)}; got {num_layers}.")
    setattr(holder, attr, torch.nn.ModuleList(list(layers)[:num_layers]))


class BERTScore:
    """BERTScore with one model, on padded batches; sentences embedded once per call.

    Args:
        model_type: bert-score's model name ("distilroberta-base", "distilbert-base-uncased", ...): picks the
            default layer, the baseline file and the Hub repository.
        num_layers: layer whose output is used; default bert-score's for ``model_type``.
        weights_dir: folder holding ``bertscore/<model_type>/`` or ``<model_type>/`` (a ``save_pretrained`` folder).
        model_path: explicit model folder (overrides ``weights_dir`` and the Hub).
        baseline_path: explicit baseline file; default bert-score's (installed package, else our copy).
        rescale_with_baseline: rescale P, R, F with the baseline (RadCliQ and the paper's metric both do).
        device: "cpu", "cuda:0"...; default: this process's GPU if any, else the CPU.
        batch_size: sentences per forward pass.
    """

    def __init__(
        self,
        model_type: str = EVAL_MODEL,
        num_layers: int | None = None,
        weights_dir: str | os.PathLike | None = None,
        model_path: str | os.PathLike | None = None,
        baseline_path: str | os.PathLike | None = None,
        rescale_with_baseline: bool = True,
        lang: str = "en",
        device: str | torch.device | None = None,
        batch_size: int = 64,
    ) -> None:
        if num_layers is None:
            if model_type not in DEFAULT_LAYERS:
                raise ValueError(f"No default layer for {model_type!r}; pass num_layers (known: {DEFAULT_LAYERS}).")
            num_layers = DEFAULT_LAYERS[model_type]
        self.model_type, self.num_layers = model_type, int(num_layers)
        hub_id = HUB_IDS.get(model_type, model_type)
        if model_path is not None:
            source = str(model_path)
        else:
            candidates = local_candidates(weights_dir, [f"bertscore/{model_type}", model_type])
            source = model_source(hub_id, f"BERTScore model {model_type}", candidates)
        try:
            model = AutoModel.from_pretrained(source, dtype=torch.float32)
            prefix_space = model.config.model_type in _PREFIX_SPACE_TYPES
            kwargs = {"add_prefix_space": True} if prefix_space else {}
            self.tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        except OSError as error:
            if source != hub_id:
                raise
            tried = local_candidates(weights_dir, [f"bertscore/{model_type}", model_type])
            root = weights_dir_or_env(weights_dir)
            raise missing_weights_error(
                f"BERTScore ({model_type})",
                "config.json",
                hub_id,
                tried,
                error,
                weights_dir,
                root / "bertscore" / model_type if root is not None else None,
                include=HUB_MODEL_FILES,
            ) from error
        if hasattr(model, "decoder") and hasattr(model, "encoder"):
            model = model.encoder
        _truncate_layers(model, self.num_layers)
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.batch_size = int(batch_size)
        self.max_length = min(int(getattr(self.tokenizer, "model_max_length", MAX_LENGTH) or MAX_LENGTH), MAX_LENGTH)
        self.special_ids = (self.tokenizer.cls_token_id, self.tokenizer.sep_token_id)
        # With the byte-level fix, the one prefix space is written before each text by ``tokenize``.
        self._prefix = " " if prefix_space and _split_like_slow_byte_level(self.tokenizer) else ""
        self.rescale_with_baseline = bool(rescale_with_baseline)
        self.baseline = None
        if self.rescale_with_baseline:
            path = baseline_path if baseline_path is not None else baseline_file(model_type, lang)
            self.baseline = load_baseline(path, self.num_layers)
        self.source = source
        self.forward_calls = 0  # forward passes run (tests count them to check batching and caching)

    # --- encoding ----------------------------------------------------------------------------------------------------

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """bert-score's ``sent_encode`` for each text: stripped, special tokens added, truncated; "" -> specials."""
        stripped = [t.strip() if isinstance(t, str) else "" for t in texts]
        present = [i for i, t in enumerate(stripped) if t]
        ids: list[list[int]] = [list(self.special_ids) for _ in stripped]
        if present:
            encoded = self.tokenizer(
                [self._prefix + stripped[i] for i in present],
                add_special_tokens=True,
                truncation=True,
                max_length=self.max_length,
            )["input_ids"]
            for i, row in zip(present, encoded):
                ids[i] = list(row)
        return ids

    @torch.inference_mode()
    def embed(self, texts: Sequence[str]) -> list[SentenceEmbedding]:
        """Normalised token embeddings of each text; each distinct text runs once, in length-sorted batches."""
        unique = list(dict.fromkeys(t if isinstance(t, str) else "" for t in texts))
        ids = self.tokenize(unique)
        out: list[SentenceEmbedding | None] = [None] * len(unique)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        cls_id, sep_id = self.special_ids
        for batch, input_ids, mask in padded_batches(ids, self.batch_size, pad):
            hidden = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device))[0]
            self.forward_calls += 1
            hidden = hidden.float()
            hidden = hidden / hidden.norm(dim=-1, keepdim=True)
            weights = ((input_ids != cls_id) & (input_ids != sep_id)).float().to(self.device)
            for row, i in enumerate(batch):
                n = len(ids[i])
                out[i] = SentenceEmbedding(hidden[row, :n].clone(), weights[row, :n].clone())
        index = {t: i for i, t in enumerate(unique)}
        return [out[index[t if isinstance(t, str) else ""]] for t in texts]

    # --- matching ----------------------------------------------------------------------------------------------------

    @torch.inference_mode()
    def score_embeddings(
        self, hyps: Sequence[SentenceEmbedding], refs: Sequence[SentenceEmbedding], budget: int = 1 << 23
    ) -> BERTScoreResult:
        """Greedy-matching P, R, F1 of embedded pairs (raw, then rescaled when the scorer rescales).

        Pairs are matched in padded groups of similar lengths, each group's similarity tensor holding at most
        ``budget`` entries, so that one long report does not pad every other pair to its length.
        """
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references.")
        n = len(hyps)
        p, r, f = (torch.zeros(n, dtype=torch.float32) for _ in range(3))
        sizes = [(h.embeddings.shape[0], x.embeddings.shape[0]) for h, x in zip(hyps, refs)]
        order = sorted(range(n), key=lambda i: sizes[i])
        start = 0
        while start < n:
            stop, lh, lr = start, 0, 0
            while stop < n:
                a, b = sizes[order[stop]]
                if stop > start and (stop - start + 1) * max(lh, a) * max(lr, b) > budget:
                    break
                lh, lr, stop = max(lh, a), max(lr, b), stop + 1
            group = order[start:stop]
            gp, gr, gf = self._match([hyps[i] for i in group], [refs[i] for i in group])
            index = torch.tensor(group)
            p[index], r[index], f[index] = gp.cpu(), gr.cpu(), gf.cpu()
            start = stop
        if self.baseline is not None:
            p, r, f = ((x - b) / (1 - b) for x, b in zip((p, r, f), self.baseline))
        return BERTScoreResult(p.numpy(), r.numpy(), f.numpy())

    def _match(self, hyps: Sequence[SentenceEmbedding], refs: Sequence[SentenceEmbedding]) -> tuple:
        device = hyps[0].embeddings.device
        h_emb = pad_sequence([h.embeddings for h in hyps], batch_first=True)
        r_emb = pad_sequence([r.embeddings.to(device) for r in refs], batch_first=True)
        h_w = pad_sequence([h.weights for h in hyps], batch_first=True)
        r_w = pad_sequence([r.weights.to(device) for r in refs], batch_first=True)
        h_len = torch.tensor([h.embeddings.shape[0] for h in hyps], device=device)
        r_len = torch.tensor([r.embeddings.shape[0] for r in refs], device=device)
        h_mask = torch.arange(h_emb.shape[1], device=device)[None, :] < h_len[:, None]
        r_mask = torch.arange(r_emb.shape[1], device=device)[None, :] < r_len[:, None]
        sim = torch.bmm(h_emb, r_emb.transpose(1, 2))
        word_precision = sim.masked_fill(~r_mask[:, None, :], float("-inf")).max(dim=2).values
        word_recall = sim.masked_fill(~h_mask[:, :, None], float("-inf")).max(dim=1).values
        # Padded positions weigh 0; their -inf is replaced so that 0 * -inf does not turn the sum into NaN.
        word_precision = word_precision.masked_fill(~h_mask, 0.0)
        word_recall = word_recall.masked_fill(~r_mask, 0.0)
        precision = (word_precision * (h_w / h_w.sum(dim=1, keepdim=True))).sum(dim=1)
        recall = (word_recall * (r_w / r_w.sum(dim=1, keepdim=True))).sum(dim=1)
        f1 = 2 * precision * recall / (precision + recall)
        empty = torch.tensor([h.is_empty or r.is_empty for h, r in zip(hyps, refs)], device=device)
        precision = precision.masked_fill(empty, 0.0)
        recall = recall.masked_fill(empty, 0.0)
        f1 = f1.masked_fill(torch.isnan(f1), 0.0)
        return precision, recall, f1

    # --- one-call API ------------------------------------------------------------------------------------------------

    def score(self, hyps: Sequence[str], refs: Sequence[str]) -> BERTScoreResult:
        """BERTScore of each (hypothesis, reference) pair; every distinct text is embedded once."""
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses but {len(refs)} references.")
        embedded = self.embed(list(hyps) + list(refs))
        return self.score_embeddings(embedded[: len(hyps)], embedded[len(hyps) :])

    def f1(self, hyps: Sequence[str], refs: Sequence[str]) -> np.ndarray:
        """F1 of each pair (rescaled when the scorer rescales)."""
        return self.score(hyps, refs).f1
