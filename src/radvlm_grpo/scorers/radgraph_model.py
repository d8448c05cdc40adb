"""The DyGIE++ span network behind RadGraph and RadGraph-XL, batched, on transformers 5.

Same computation as the upstream ``radgraph`` package (its vendored AllenNLP/DyGIE++ code, metrics.md section 1), but
over a padded batch of many reports instead of one report per forward:

- words -> word pieces, each word tokenized alone; a report's word pieces are cut into segments of
  ``max_length - 2`` pieces, each wrapped in [CLS]/[SEP] (AllenNLP's long-sequence folding), and every segment of the
  batch goes through the encoder as one padded batch; a word is the mean of its pieces' last-layer vectors (zero when
  the tokenizer gives it no piece);
- every span of at most ``max_span_width`` words is ``[first word; last word; width embedding]``; the first layer of
  the NER and pruning scorers is applied to the three parts separately (the word parts once per word, not once per
  span: a word begins or ends up to ``max_span_width`` spans), so the (spans x 1556) span embeddings are only built
  for the kept spans;
- NER: a feed-forward scorer per label against a fixed 0 for the null label, argmax;
- relations: the ``ceil(spans_per_word * n_words)`` spans with the best mention scores are kept (in span order), every
  ordered pair (i, j) of kept spans, the diagonal included, is scored from ``[e_i; e_j; e_i * e_j]`` plus both mention
  scores against a fixed 0 for "no relation", argmax.

The module and parameter names follow the upstream network so that ``weights.th`` loads as saved. The inactive
coreference and event modules of the checkpoint (loss weight 0 in the released models) are not built; their tensors
are checked to be the only ones left over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

# Checkpoint tensors that belong to modules the released models never run (loss weight 0, no propagation), and a
# buffer that older transformers versions saved with BERT.
INACTIVE_PREFIXES = ("_coref.", "_events.")
IGNORED_SUFFIXES = ("embeddings.position_ids",)


class FeedForward(nn.Module):
    """AllenNLP's FeedForward with ReLU after every layer (as DyGIE builds it); dropout is inactive at inference."""

    def __init__(self, input_dim: int, num_layers: int, hidden_dims: int | Sequence[int]) -> None:
        super().__init__()
        dims = list(hidden_dims) if isinstance(hidden_dims, Sequence) else [hidden_dims] * num_layers
        sizes = [input_dim, *dims]
        self._linear_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.output_dim = sizes[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self._linear_layers:
            x = torch.relu(layer(x))
        return x


class _TimeDistributed(nn.Module):
    """Name-only wrapper: AllenNLP's TimeDistributed stores its module as ``_module``."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._module(x)


def _scorer(ff: FeedForward, n_out: int) -> nn.Sequential:
    return nn.Sequential(_TimeDistributed(ff), _TimeDistributed(nn.Linear(ff.output_dim, n_out)))


class _Pruner(nn.Module):
    def __init__(self, scorer: nn.Module) -> None:
        super().__init__()
        self._scorer = scorer


class _Embedder(nn.Module):
    """``_embedder.token_embedder_bert._matched_embedder.transformer_model``, as AllenNLP nests it."""

    def __init__(self, transformer: nn.Module) -> None:
        super().__init__()
        self.token_embedder_bert = nn.Module()
        self.token_embedder_bert._matched_embedder = nn.Module()
        self.token_embedder_bert._matched_embedder.transformer_model = transformer

    @property
    def transformer(self) -> nn.Module:
        return self.token_embedder_bert._matched_embedder.transformer_model


class _SpanExtractor(nn.Module):
    def __init__(self, max_span_width: int, feature_size: int) -> None:
        super().__init__()
        self._span_width_embedding = nn.Embedding(max_span_width, feature_size)


@dataclass
class Batch:
    """One padded batch of reports, ready for :meth:`DygieNetwork.forward` (all tensors on the model's device).

    ``piece_ids``/``piece_mask``: (n_segments, seg_len) encoder input; ``word_pieces``: (n_words_total, max_pieces)
    flat row indices into the encoder output (-1: padding) per word of the batch, in document order;
    ``word_index``: (batch, max_words) row into the word list (-1: padding); ``spans``: (batch, max_spans, 2) inclusive
    word spans (0 for padding) with ``span_mask``; ``n_words``: (batch,).
    """

    piece_ids: torch.Tensor
    piece_mask: torch.Tensor
    word_pieces: torch.Tensor
    word_index: torch.Tensor
    spans: torch.Tensor
    span_mask: torch.Tensor
    n_words: torch.Tensor


@dataclass
class Predictions:
    """Per-batch outputs on the CPU: NER label index per span (0 = null), kept span indices per report (sorted, -1
    padding), and relation label per kept pair (-1 = none; the label index into the relation vocabulary)."""

    ner: torch.Tensor
    kept: torch.Tensor
    relations: torch.Tensor


class DygieNetwork(nn.Module):
    """The span extractor, NER tagger and relation extractor of one DyGIE++ checkpoint (inference only)."""

    def __init__(
        self,
        transformer: nn.Module,
        ner_sizes: dict[str, int],
        relation_sizes: dict[str, int],
        max_span_width: int,
        feature_size: int,
        ff_layers: int,
        ff_hidden: int | Sequence[int],
        spans_per_word: float,
    ) -> None:
        super().__init__()
        self._embedder = _Embedder(transformer)
        hidden = transformer.config.hidden_size
        self._endpoint_span_extractor = _SpanExtractor(max_span_width, feature_size)
        span_dim = 2 * hidden + feature_size

        def ff(input_dim: int) -> FeedForward:
            return FeedForward(input_dim, ff_layers, ff_hidden)

        # The null NER label (index 0) is not scored: it gets a fixed 0.
        self._ner = nn.Module()
        self._ner._ner_scorers = nn.ModuleDict({ns: _scorer(ff(span_dim), n - 1) for ns, n in ner_sizes.items()})
        self._relation = nn.Module()
        self._relation._mention_pruners = nn.ModuleDict(
            {ns: _Pruner(_scorer(ff(span_dim), 1)) for ns in relation_sizes}
        )
        self._relation._relation_feedforwards = nn.ModuleDict({ns: ff(3 * span_dim) for ns in relation_sizes})
        self._relation._relation_scorers = nn.ModuleDict(
            {
                ns: nn.Linear(self._relation._relation_feedforwards[ns].output_dim, n)
                for ns, n in relation_sizes.items()
            }
        )
        self.spans_per_word = spans_per_word
        self.hidden = hidden

    def load_checkpoint(self, state: dict[str, torch.Tensor]) -> None:
        """Strict load of an upstream ``weights.th``: every tensor of this network must be there with its shape, and
        the only tensors left over may be those of the inactive coreference/event modules."""
        own = set(self.state_dict())
        missing = sorted(own - set(state))
        unexpected = sorted(
            k for k in set(state) - own if not k.startswith(INACTIVE_PREFIXES) and not k.endswith(IGNORED_SUFFIXES)
        )
        if missing or unexpected:
            raise RuntimeError(
                f"weights.th does not match the DyGIE config: missing {missing[:8]}{'...' if len(missing) > 8 else ''}"
                f", unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
            )
        self.load_state_dict({k: state[k] for k in own}, strict=True)

    # -----------------------------------------------------------------------------------------------------------------

    def word_embeddings(self, batch: Batch) -> torch.Tensor:
        """(batch, max_words, hidden): mean of each word's last-layer piece vectors (zero for a word with no piece)."""
        n_docs, max_words = batch.word_index.shape
        out = batch.word_index.new_zeros((n_docs, max_words, self.hidden), dtype=torch.float32)
        if batch.piece_ids.numel() == 0 or batch.word_pieces.numel() == 0:
            return out
        encoded = self._embedder.transformer(input_ids=batch.piece_ids, attention_mask=batch.piece_mask)
        flat = encoded.last_hidden_state.reshape(-1, self.hidden)
        pieces_mask = batch.word_pieces >= 0
        gathered = flat[batch.word_pieces.clamp_min(0)] * pieces_mask.unsqueeze(-1)
        counts = pieces_mask.sum(1, keepdim=True)
        words = gathered.sum(1) / counts.clamp_min(1)
        words = words.masked_fill(counts == 0, 0.0)
        valid = batch.word_index >= 0
        out[valid] = words[batch.word_index[valid]].to(out.dtype)
        return out

    def span_hidden(self, feedforward: FeedForward, words: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """``feedforward(span_embeddings(words, spans))`` without building the span embeddings: the first layer's
        weight is split into its first-word, last-word and width parts, the word parts are computed once per word and
        each span adds the rows of its two words and its width."""
        first, *rest = feedforward._linear_layers
        w_first, w_last, w_width = first.weight.split(
            [self.hidden, self.hidden, first.weight.size(1) - 2 * self.hidden], 1
        )
        starts, ends = spans[..., 0], spans[..., 1]
        out = first.weight.size(0)
        by_first = torch.gather(words @ w_first.T, 1, starts.unsqueeze(-1).expand(-1, -1, out))
        by_last = torch.gather(words @ w_last.T, 1, ends.unsqueeze(-1).expand(-1, -1, out))
        by_width = self._endpoint_span_extractor._span_width_embedding.weight @ w_width.T + first.bias
        hidden = torch.relu(by_first + by_last + by_width[ends - starts])
        for layer in rest:
            hidden = torch.relu(layer(hidden))
        return hidden

    def span_embeddings(self, words: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        starts, ends = spans[..., 0], spans[..., 1]
        first = torch.gather(words, 1, starts.unsqueeze(-1).expand(-1, -1, words.size(-1)))
        last = torch.gather(words, 1, ends.unsqueeze(-1).expand(-1, -1, words.size(-1)))
        width = self._endpoint_span_extractor._span_width_embedding(ends - starts)
        return torch.cat([first, last, width], -1)

    def ner(self, words: torch.Tensor, spans: torch.Tensor, span_mask: torch.Tensor, namespace: str) -> torch.Tensor:
        """(batch, max_spans) label index, 0 (null) where no label beats the null label's 0."""
        feedforward, linear = (part._module for part in self._ner._ner_scorers[namespace])
        scores = linear(self.span_hidden(feedforward, words, spans))
        scores = torch.cat([scores.new_zeros(scores.shape[:-1] + (1,)), scores], -1)
        labels = scores.max(-1).indices
        return labels.masked_fill(~span_mask, 0)

    def prune(
        self, words: torch.Tensor, spans: torch.Tensor, span_mask: torch.Tensor, n_words: torch.Tensor, namespace: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Kept span indices (batch, k_max) in span order, their mask, and their mention scores (batch, k_max)."""
        feedforward, linear = (part._module for part in self._relation._mention_pruners[namespace]._scorer)
        scores = linear(self.span_hidden(feedforward, words, spans)).squeeze(-1)
        scores = scores.masked_fill(~span_mask, -1e20)
        keep = torch.ceil(n_words.float() * self.spans_per_word).long()
        k_max = max(int(keep.max().item()) if keep.numel() else 0, 1)
        top = scores.topk(k_max, dim=1).indices
        kept_mask = torch.arange(k_max, device=top.device).unsqueeze(0) < keep.unsqueeze(1)
        sentinel = scores.size(1)
        kept = torch.where(kept_mask, top, torch.full_like(top, sentinel)).sort(1).values
        kept_mask = kept < sentinel
        kept = kept.masked_fill(~kept_mask, 0)
        return kept, kept_mask, torch.gather(scores, 1, kept)

    def relations(
        self,
        emb: torch.Tensor,
        kept_mask: torch.Tensor,
        mention: torch.Tensor,
        namespace: str,
        max_pair_rows: int | None = None,
    ) -> torch.Tensor:
        """(batch, k, k) relation label index into the vocabulary, -1 for none (and for padded pairs), from the kept
        spans' embeddings ``emb`` (batch, k, span_dim).

        The first feed-forward layer acts on ``[e_i; e_j; e_i * e_j]``; its weight is split in three so that the
        e_i and e_j parts are computed once per span, and only the product is formed per pair (rows in chunks).
        """
        feedforward = self._relation._relation_feedforwards[namespace]
        scorer = self._relation._relation_scorers[namespace]
        n_docs, k, dim = emb.shape
        first, *rest = feedforward._linear_layers
        w_i, w_j, w_ij = first.weight.split(dim, dim=1)
        part_i = emb @ w_i.T + first.bias  # (b, k, h)
        part_j = emb @ w_j.T
        labels = torch.empty((n_docs, k, k), dtype=torch.long, device=emb.device)
        if max_pair_rows is None:  # a CPU's cache holds a few thousand pair rows of 1556 floats; a GPU wants many
            max_pair_rows = 1 << 12 if emb.device.type == "cpu" else 1 << 16
        rows = max(1, max_pair_rows // max(1, k * n_docs))
        for r0 in range(0, k, rows):
            r1 = min(k, r0 + rows)
            prod = emb[:, r0:r1, None, :] * emb[:, None, :, :]  # (b, r, k, d)
            hidden = torch.relu(part_i[:, r0:r1, None, :] + part_j[:, None, :, :] + prod @ w_ij.T)
            for layer in rest:
                hidden = torch.relu(layer(hidden))
            scores = scorer(hidden) + (mention[:, r0:r1, None, None] + mention[:, None, :, None])
            scores = torch.cat([scores.new_zeros(scores.shape[:-1] + (1,)), scores], -1)
            labels[:, r0:r1] = scores.max(-1).indices - 1
        pair_mask = kept_mask[:, :, None] & kept_mask[:, None, :]
        return labels.masked_fill(~pair_mask, -1)

    @torch.inference_mode()
    def forward(self, batch: Batch, ner_namespace: str, relation_namespace: str) -> Predictions:
        words = self.word_embeddings(batch)
        ner = self.ner(words, batch.spans, batch.span_mask, ner_namespace)
        kept, kept_mask, mention = self.prune(words, batch.spans, batch.span_mask, batch.n_words, relation_namespace)
        kept_spans = torch.gather(batch.spans, 1, kept.unsqueeze(-1).expand(-1, -1, 2))
        relations = self.relations(self.span_embeddings(words, kept_spans), kept_mask, mention, relation_namespace)
        return Predictions(ner.cpu(), kept.masked_fill(~kept_mask, -1).cpu(), relations.cpu())


def enumerate_spans(n_words: int, max_span_width: int) -> list[tuple[int, int]]:
    """Inclusive (start, end) spans of 1 to ``max_span_width`` words, by start then end (AllenNLP's order)."""
    return [(s, e) for s in range(n_words) for e in range(s, min(s + max_span_width, n_words))]


def n_spans(n_words: int, max_span_width: int) -> int:
    return sum(min(max_span_width, n_words - s) for s in range(n_words))


def fold_segments(n_pieces: int, segment_len: int) -> int:
    """How many encoder segments a report of ``n_pieces`` word pieces takes (at least one)."""
    return max(1, math.ceil(n_pieces / segment_len)) if segment_len > 0 else 1
