"""RadGraph and RadGraph-XL entity/relation extraction, RadGraph-F1 and RadCliQ's RadGraph feature.

The ``radgraph`` package (PyPI 0.1.18) fails on transformers 5 (``encode_plus``) and parses one report per forward
pass. This module loads the same official archives (``radgraph.tar.gz`` / ``radgraph-xl.tar.gz`` from
``StanfordAIMI/RRG_scorers``: the DyGIE ``config.json``, ``vocabulary/`` and ``weights.th``, loaded strictly) and
gives the same annotations, with the same preprocessing per model type, spans, pruning and decoding, from padded
batches of many reports (``radgraph_model.py``). It does not import the ``radgraph`` package. The goldens in
``tests/fixtures/scorers/`` were written by the upstream package on transformers 4.57.6 and are reproduced exactly.

Scores:

- ``radgraph_f1(hyp, ref, level)``: RadGraph-F1 as ``radgraph.rewards.compute_reward`` of PyPI 0.1.18: ``simple``
  (entities as (tokens, label)), ``partial`` ((tokens, label, True) for an entity with relations) and ``complete``
  (one (tokens, label, relation, target tokens) per relation, tokens lowercased; entities without relations as
  (tokens, label)). Only the complete level lowercases (GitHub master lowercases all three; 0.1.18 does not), and a
  report without entities scores 0.
- ``entity_relation_f1(hyp, ref)``: RadCliQ's "radgraph" feature, (entity F1 + relation F1) / 2 as
  CXR-Report-Metric's ``radgraph_evaluate_model.py`` and RadEval compute it: entities {(tokens, label)}, relations
  {((tokens, label), (target tokens, target label), type)}, no lowercasing, an F1 of 0 when either set is empty.

Empty input: an empty report is read as the word "None", as upstream does; so is a report that has no word after
preprocessing (whitespace only), on which upstream crashes. ``F1RadGraph`` scores a pair 0 when either side is empty
or whitespace only, without parsing it, as upstream does for empty strings.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radvlm_grpo.scorers._weights import (
    RRG_SCORERS_REPO,
    describe_folder,
    hf_download_command,
    hub_file,
    resolve_device,
    weights_dir_or_env,
)
from radvlm_grpo.scorers.radgraph_model import Batch, DygieNetwork, enumerate_spans

MODEL_TYPES = ("radgraph", "radgraph-xl")
DEFAULT_MODEL_TYPE = "radgraph-xl"
ARCHIVES = {"radgraph": "radgraph.tar.gz", "radgraph-xl": "radgraph-xl.tar.gz"}
LEVELS = ("simple", "partial", "complete")
REQUIRED_FILES = ("config.json", "weights.th", "vocabulary")
CACHE_ENV = "RADVLM_SCORERS_CACHE"
EMPTY_REPORT = "None"  # what upstream parses in place of an empty report
# Padding budget per report slot of a batch: about a 90-word report's kept-span pairs and a 200-piece report.
PAIRS_PER_REPORT = 45 * 45
PIECES_PER_REPORT = 200

# RadGraph v1 preprocessing: a space around punctuation, then whitespace split (the class is upstream's, ",-," being
# a one-character range, so "-" is not split off).
_V1_PUNCT = re.compile(r"(?<! )(?=[/,-,:,.,!?()])|(?<=[/,-,:,.,!?()])(?! )")
_XL_FIXES = ((").", ") ."), ("%.", "% ."), (".'", ". '"), ("%,", "% ,"), ("%)", "% )"))


def preprocess(report: str, model_type: str) -> list[str]:
    """The words upstream feeds the model: v1 splits punctuation off by regex; XL normalises escapes and whitespace,
    then uses nltk's wordpunct tokenizer with a few fixes."""
    if model_type == "radgraph":
        return _V1_PUNCT.sub(" ", report).split()
    from nltk.tokenize import wordpunct_tokenize

    text = report.replace("\\n", "  ").replace("\\f", "  ").replace("\\u2122", "      ")
    text = text.replace("\n", " ").replace('\\"', "``")
    text = " ".join(wordpunct_tokenize(re.sub(r"\s+", " ", text)))
    for old, new in _XL_FIXES:
        text = text.replace(old, new)
    return text.split()


def _model_word(word: str) -> str:
    """DyGIE's reader turns "/." and "/?" into "." and "?" for the model (the annotation keeps the original)."""
    return word[1:] if word in ("/.", "/?") else word


# ---------------------------------------------------------------------------------------------------------------------
# Weights: a local folder or the Hub archive.


def _cache_root() -> Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "radvlm_grpo"
    )
    return Path(root) / "radgraph"


def _find_model_folder(root: Path) -> Path | None:
    """``root`` or a folder just below it that holds ``config.json`` (archives may or may not have a top folder)."""
    if (root / "config.json").is_file():
        return root
    subfolders = [p for p in root.iterdir() if p.is_dir() and (p / "config.json").is_file()] if root.is_dir() else []
    return subfolders[0] if len(subfolders) == 1 else None


def _extract_archive(archive: Path, model_type: str) -> Path:
    """Extract once into the cache, keyed by the archive's file name (its content hash in the Hub cache); processes
    that race each extract to their own staging folder and the first rename wins."""
    target = _cache_root() / f"{model_type}-{Path(os.path.realpath(archive)).name[:24]}"
    found = _find_model_folder(target) if target.exists() else None
    if found is not None:
        return found
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{model_type}-", dir=target.parent))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(staging, filter="data")
        if target.exists() and _find_model_folder(target) is None:
            shutil.rmtree(target, ignore_errors=True)  # a broken earlier extraction
        try:
            os.rename(staging, target)
        except OSError:
            pass  # another process got there first
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = _find_model_folder(target)
    if found is None:
        raise FileNotFoundError(f"{archive} holds no config.json: not a RadGraph archive.")
    return found


def local_model(root: Path, model_type: str) -> Path | None:
    """A model under a weights folder: ``<model_type>/`` or ``radgraph/<model_type>/`` holding config.json, else the
    Hub archive as downloaded there (``<archive>`` or ``radgraph/<archive>``); None when there is none."""
    for folder in (root / model_type, root / "radgraph" / model_type):
        if (folder / "config.json").is_file():
            return folder
    for archive in (root / ARCHIVES[model_type], root / "radgraph" / ARCHIVES[model_type]):
        if archive.is_file():
            return archive
    return None


def _local_candidates(root: Path, model_type: str) -> list[Path]:
    return [root / model_type, root / "radgraph" / model_type, root / ARCHIVES[model_type]]


def resolve_model_dir(
    model_type: str, model_dir: str | os.PathLike | None = None, weights_dir: str | os.PathLike | None = None
) -> Path:
    """The folder holding ``config.json``, ``vocabulary/`` and ``weights.th``: ``model_dir`` (or its ``model_type``
    sub-folder, or the archive in it, or a downloaded ``.tar.gz``) when given, else a model in the weights folder
    (``weights_dir`` or ``$RADVLM_SCORER_WEIGHTS_DIR``; see ``local_model``), else the Hub archive (local cache
    first), extracted once."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"Unknown RadGraph model_type {model_type!r}; expected one of {MODEL_TYPES}.")
    archive_name = ARCHIVES[model_type]
    if model_dir is None:
        root = weights_dir_or_env(weights_dir)
        found = local_model(root, model_type) if root is not None else None
        if found is not None and found.is_dir():
            folder = found
        else:
            archive = found or hub_file(
                RRG_SCORERS_REPO,
                archive_name,
                what=f"RadGraph weights ({model_type})",
                candidates=_local_candidates(root, model_type) if root is not None else (),
                weights_dir=weights_dir,
                local_dir=root,
            )
            folder = _extract_archive(archive, model_type)
    elif Path(model_dir).is_file():
        folder = _extract_archive(Path(model_dir), model_type)
    else:
        root = Path(model_dir).expanduser()
        folder = _find_model_folder(root) or _find_model_folder(root / model_type)
        if folder is None and (root / archive_name).is_file():
            folder = _extract_archive(root / archive_name, model_type)
        folder = folder or root
    missing = [name for name in REQUIRED_FILES if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"RadGraph ({model_type}): {folder} lacks {', '.join(missing)}; it should hold the extracted "
            f"{archive_name} of the Hugging Face Hub repository {RRG_SCORERS_REPO} (config.json, vocabulary/, "
            f"weights.th), as a {model_type}/ sub-folder or the archive itself. Instead, {describe_folder(folder)}.\n"
            f"Fix: download the archive there (it is extracted on first use) with\n"
            f"  {hf_download_command(RRG_SCORERS_REPO, [archive_name], local_dir=Path(model_dir).expanduser())}"
        )
    return folder


def read_label_vocabulary(folder: Path) -> dict[str, list[str]]:
    """AllenNLP's ``Vocabulary.from_files`` for label namespaces: one label per line, index = line number (+1 with a
    padding token at 0 for namespaces not matched by ``non_padded_namespaces.txt``)."""
    patterns = [p.strip() for p in (folder / "non_padded_namespaces.txt").read_text(encoding="utf-8").splitlines()]

    def non_padded(namespace: str) -> bool:
        return any(p == namespace or (p.startswith("*") and namespace.endswith(p[1:])) for p in patterns if p)

    vocab = {}
    for path in sorted(folder.iterdir()):
        if path.name == "non_padded_namespaces.txt" or path.name.startswith(".") or not path.is_file():
            continue
        lines = re.split(r"\n|\r\n", path.read_text(encoding="utf-8"))
        if lines and lines[-1] == "":
            lines = lines[:-1]
        namespace = path.name.replace(".txt", "")
        tokens = [line.replace("@@NEWLINE@@", "\n") for line in lines]
        vocab[namespace] = tokens if non_padded(namespace) else ["@@PADDING@@", *tokens]
    return vocab


def _encoder_source(name: str, folder: Path) -> str:
    """The base encoder named in the DyGIE config: a folder inside the model folder (as the test fixtures ship it),
    a local path, or a Hub id (only its config and tokenizer files are read; the weights are in weights.th)."""
    for candidate in (folder / name, Path(name).expanduser()):
        if candidate.is_dir():
            return str(candidate)
    return name


def _load_encoder(name: str, folder: Path):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    source = _encoder_source(name, folder)
    try:
        config = AutoConfig.from_pretrained(source)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"RadGraph's base encoder {name!r} (named in {folder / 'config.json'}): its config.json and tokenizer "
            f"files are neither local nor downloadable from the Hugging Face Hub repository {name!r} ({error})."
        ) from error
    return AutoModel.from_config(config), tokenizer


@dataclass
class _Doc:
    words: list[str]  # as annotated
    pieces: list[int]  # word-piece ids of the whole report, no special tokens
    offsets: list[tuple[int, int] | None]  # per word: first and last piece index, None for a word with no piece


class RadGraph:
    """RadGraph (v1) or RadGraph-XL annotations for many reports at once.

    Args:
        model_type: "radgraph-xl" (default, as the paper trained) or "radgraph" (CXR-Report-Metric's model).
        model_dir: a folder with the extracted archive (``config.json``, ``vocabulary/``, ``weights.th``), a folder
            holding it as ``<model_type>/``, or the archive itself; default: ``StanfordAIMI/RRG_scorers`` (Hub cache
            first), extracted once under ``$RADVLM_SCORERS_CACHE`` (default ``~/.cache/radvlm_grpo/radgraph``).
        device: where the network runs (default: this process's GPU if any, else the CPU).
        batch_size: reports per forward pass (reports are grouped by length first).
        weights_dir: a weights folder (``radvlm_grpo.scorers._weights``) holding ``<model_type>/`` or the archive,
            read when ``model_dir`` is not given (default ``$RADVLM_SCORER_WEIGHTS_DIR``).
    """

    def __init__(
        self,
        model_type: str = DEFAULT_MODEL_TYPE,
        model_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 32,
        weights_dir: str | os.PathLike | None = None,
    ) -> None:
        self.model_type = (model_type or DEFAULT_MODEL_TYPE).lower()
        self.folder = resolve_model_dir(self.model_type, model_dir, weights_dir)
        self.device = resolve_device(device)
        self.batch_size = max(1, int(batch_size))
        config = json.loads((self.folder / "config.json").read_text())
        reader, model = config["dataset_reader"], config["model"]
        _check_supported(model)
        indexer = reader["token_indexers"]["bert"]
        embedder = model["embedder"]["token_embedders"]["bert"]
        self.max_span_width = int(reader["max_span_width"])
        labels = read_label_vocabulary(self.folder / "vocabulary")
        self.ner_namespace = f"{self.model_type}__ner_labels"
        self.relation_namespace = f"{self.model_type}__relation_labels"
        for namespace in (self.ner_namespace, self.relation_namespace):
            if namespace not in labels:
                raise ValueError(f"{self.folder / 'vocabulary'} has no {namespace}.txt for model_type {model_type!r}.")
        if labels[self.ner_namespace][0] != "":
            raise ValueError(f"{self.ner_namespace}: the null label '' must come first (DyGIE's NER asserts it).")
        self.ner_labels, self.relation_labels = labels[self.ner_namespace], labels[self.relation_namespace]

        transformer, self.tokenizer = _load_encoder(embedder["model_name"], self.folder)
        if indexer["model_name"] != embedder["model_name"]:
            _, self.tokenizer = _load_encoder(indexer["model_name"], self.folder)
        feedforward = model["feedforward_params"]
        self.network = DygieNetwork(
            transformer,
            ner_sizes={ns: len(v) for ns, v in labels.items() if "ner_labels" in ns},
            relation_sizes={ns: len(v) for ns, v in labels.items() if "relation_labels" in ns},
            max_span_width=int(model["max_span_width"]),
            feature_size=int(model["feature_size"]),
            ff_layers=int(feedforward["num_layers"]),
            ff_hidden=feedforward["hidden_dims"],
            spans_per_word=float(model["modules"]["relation"]["spans_per_word"]),
        )
        state = torch.load(self.folder / "weights.th", map_location="cpu", weights_only=True)
        self.network.load_checkpoint(state)
        self.network.eval().to(self.device)

        # Special tokens around a segment, and the segment length, as AllenNLP's indexer folds long reports.
        with_special = self.tokenizer("a")["input_ids"]
        bare = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        start = next(i for i in range(len(with_special)) if with_special[i : i + len(bare)] == bare)
        self._prefix, self._suffix = with_special[:start], with_special[start + len(bare) :]
        max_length = indexer.get("max_length")
        self.segment_len = (int(max_length) - len(self._prefix) - len(self._suffix)) if max_length else None
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._piece_cache: dict[str, list[int]] = {}
        self._span_cache: dict[int, np.ndarray] = {}

    def __repr__(self) -> str:
        return f"RadGraph(model_type={self.model_type!r}, folder={str(self.folder)!r}, device={str(self.device)!r})"

    # -----------------------------------------------------------------------------------------------------------------

    def words(self, report: str) -> list[str]:
        """The words annotated for ``report`` (the word "None" for an empty report)."""
        return preprocess(report, self.model_type) or preprocess(EMPTY_REPORT, self.model_type)

    def _pieces(self, words: Sequence[str]) -> list[list[int]]:
        """Each word tokenized alone (cached: reports repeat their vocabulary)."""
        new = list(dict.fromkeys(w for w in words if w not in self._piece_cache))
        if new:
            if len(self._piece_cache) > 500_000:
                self._piece_cache.clear()
            ids = self.tokenizer(new, add_special_tokens=False)["input_ids"]
            self._piece_cache.update(zip(new, ids))
        return [self._piece_cache[w] for w in words]

    def _doc(self, words: list[str]) -> _Doc:
        pieces: list[int] = []
        offsets: list[tuple[int, int] | None] = []
        for ids in self._pieces([_model_word(w) for w in words]):
            offsets.append((len(pieces), len(pieces) + len(ids) - 1) if ids else None)
            pieces.extend(ids)
        return _Doc(words, pieces, offsets)

    def _spans(self, n_words: int) -> np.ndarray:
        """(n_spans, 2) inclusive spans of a report of ``n_words`` words (cached: lengths repeat)."""
        spans = self._span_cache.get(n_words)
        if spans is None:
            spans = np.array(enumerate_spans(n_words, self.max_span_width), dtype=np.int64).reshape(-1, 2)
            self._span_cache[n_words] = spans
        return spans

    def _batch(self, docs: Sequence[_Doc]) -> Batch:
        """The padded tensors of a batch, filled in numpy and moved to the device once (no per-row tensor calls)."""
        seg_len = self.segment_len or max(1, max(len(d.pieces) for d in docs))
        prefix, suffix = len(self._prefix), len(self._suffix)
        n_segments = [math.ceil(len(d.pieces) / seg_len) for d in docs]  # a report without pieces has none
        first_segment = np.concatenate([[0], np.cumsum(n_segments)]).astype(np.int64)
        segment_lengths = [
            prefix + min(seg_len, len(d.pieces) - i) + suffix for d in docs for i in range(0, len(d.pieces), seg_len)
        ]
        width = max(segment_lengths, default=0)
        piece_ids = np.full((len(segment_lengths), width), self._pad_id, dtype=np.int64)
        piece_mask = np.zeros((len(segment_lengths), width), dtype=np.int64)
        row = 0
        for doc in docs:
            for i in range(0, len(doc.pieces), seg_len):
                segment = self._prefix + doc.pieces[i : i + seg_len] + self._suffix
                piece_ids[row, : len(segment)] = segment
                piece_mask[row, : len(segment)] = 1
                row += 1

        # Per word of the batch (documents in order): its piece positions in the flattened encoder output.
        n_words = [len(d.words) for d in docs]
        piece_counts = [[(o[1] - o[0] + 1) if o is not None else 0 for o in d.offsets] for d in docs]
        max_pieces = max((c for counts in piece_counts for c in counts), default=0)
        word_pieces = np.full((sum(n_words), max(max_pieces, 1)), -1, dtype=np.int64)
        word_index = np.full((len(docs), max(n_words)), -1, dtype=np.int64)
        row = 0
        for b, (doc, counts) in enumerate(zip(docs, piece_counts)):
            word_index[b, : len(counts)] = np.arange(row, row + len(counts))
            if doc.pieces:
                k = np.arange(len(doc.pieces))  # piece k of the report sits in segment k // seg_len
                flat = (first_segment[b] + k // seg_len) * width + prefix + k % seg_len
                for w, (offset, count) in enumerate(zip(doc.offsets, counts)):
                    if count:
                        word_pieces[row + w, :count] = flat[offset[0] : offset[1] + 1]
            row += len(counts)
        spans = [self._spans(n) for n in n_words]
        max_spans = max(len(s) for s in spans)
        span_array = np.zeros((len(docs), max_spans, 2), dtype=np.int64)
        span_mask = np.zeros((len(docs), max_spans), dtype=bool)
        for b, doc_spans in enumerate(spans):
            span_array[b, : len(doc_spans)] = doc_spans
            span_mask[b, : len(doc_spans)] = True
        arrays = (piece_ids, piece_mask, word_pieces, word_index, span_array, span_mask, np.array(n_words))
        return Batch(*(torch.from_numpy(a).to(self.device) for a in arrays))

    def _decode(self, doc: _Doc, ner: torch.Tensor, kept: torch.Tensor, relations: torch.Tensor) -> dict:
        """Upstream's annotation dict for one report from its rows of the batch outputs."""
        doc_spans = enumerate_spans(len(doc.words), self.max_span_width)
        ner_rows = ner[: len(doc_spans)].tolist()
        entities = [(span, self.ner_labels[label]) for span, label in zip(doc_spans, ner_rows) if label != 0]
        entity_id = {}
        for i, (span, _) in enumerate(entities):
            entity_id.setdefault(span, i + 1)
        kept_spans = [doc_spans[i] for i in kept.tolist() if i >= 0]
        k = len(kept_spans)
        pairs = (relations[:k, :k] >= 0).nonzero().tolist()
        out_relations: dict[tuple[int, int], list[list[str]]] = {}
        for i, j in pairs:
            source, target = kept_spans[i], kept_spans[j]
            if source in entity_id and target in entity_id:
                label = self.relation_labels[int(relations[i, j])]
                out_relations.setdefault(source, []).append([label, str(entity_id[target])])
        annotated = {}
        for i, ((start, end), label) in enumerate(entities):
            annotated[str(i + 1)] = {
                "tokens": " ".join(doc.words[start : end + 1]),
                "label": label,
                "start_ix": start,
                "end_ix": end,
                "relations": out_relations.get((start, end), []),
            }
        return {"text": " ".join(doc.words), "entities": annotated, "data_source": None, "data_split": "inference"}

    def _batches(self, docs: Sequence[_Doc]) -> list[list[int]]:
        """Reports grouped longest first, at most ``batch_size`` a batch, and fewer when long: a batch is padded to its
        longest report, and the relation scorer's cost grows with the square of the kept spans."""
        order = sorted(range(len(docs)), key=lambda i: (-len(docs[i].words), -len(docs[i].pieces)))
        batches: list[list[int]] = []
        for i in order:
            if batches:
                head = docs[batches[-1][0]]
                kept = math.ceil(len(head.words) * self.network.spans_per_word)
                n = len(batches[-1]) + 1
                if (
                    n <= self.batch_size
                    and n * kept * kept <= self.batch_size * PAIRS_PER_REPORT
                    and n * len(head.pieces) <= self.batch_size * PIECES_PER_REPORT
                ):
                    batches[-1].append(i)
                    continue
            batches.append([i])
        return batches

    def annotate(self, reports: Sequence[str]) -> list[dict]:
        """One upstream annotation dict per report (``{"text", "entities", "data_source", "data_split"}``), in order.

        Identical reports are parsed once; reports are grouped by length into batches of ``batch_size``.
        """
        if isinstance(reports, str):
            reports = [reports]
        words = [self.words(r if isinstance(r, str) else "") for r in reports]
        unique = list(dict.fromkeys(tuple(w) for w in words))
        docs = [self._doc(list(w)) for w in unique]
        results: list[dict | None] = [None] * len(docs)
        for chunk in self._batches(docs):
            batch_docs = [docs[i] for i in chunk]
            predictions = self.network(self._batch(batch_docs), self.ner_namespace, self.relation_namespace)
            for row, i in enumerate(chunk):
                results[i] = self._decode(
                    docs[i], predictions.ner[row], predictions.kept[row], predictions.relations[row]
                )
        by_words = dict(zip(unique, results))
        out, seen = [], set()
        for w in words:
            key = tuple(w)
            out.append(copy.deepcopy(by_words[key]) if key in seen else by_words[key])
            seen.add(key)
        return out

    __call__ = annotate


def _check_supported(model: dict) -> None:
    """The released models run NER and relations only; anything else would need modules we do not build."""
    weights = model.get("loss_weights", {})
    coref_prop = model.get("modules", {}).get("coref", {}).get("coref_prop", 0)
    if weights.get("coref", 0) > 0 or weights.get("events", 0) > 0 or coref_prop:
        raise NotImplementedError("RadGraph checkpoints with active coreference or event modules are not supported.")
    if weights.get("ner", 0) <= 0 or weights.get("relation", 0) <= 0:
        raise NotImplementedError("RadGraph checkpoints need both the NER and the relation module active.")
    embedder = model["embedder"]["token_embedders"]["bert"]
    if not embedder.get("last_layer_only", True) or embedder.get("sub_module"):
        raise NotImplementedError("Only last-layer transformer embeddings are supported.")


# ---------------------------------------------------------------------------------------------------------------------
# Scores.


def _set_f1(hyp: set, ref: set) -> float:
    """Upstream RadGraph-F1's set F1 (precision over the hypothesis set, recall over the reference set)."""
    precision = sum(1 for x in hyp if x in ref) / len(hyp) if len(hyp) > 0 else 0.0
    recall = sum(1 for x in ref if x in hyp) / len(ref) if len(ref) > 0 else 0.0
    return (2 * precision * recall / (precision + recall)) if (precision + recall) > 0 else 0.0


def _items(annotation: dict, level: str) -> set:
    entities = annotation["entities"]
    items: set = set()
    for entity in entities.values():
        key = (entity["tokens"], entity["label"])
        if level == "simple" or not entity["relations"]:
            items.add(key)
        elif level == "partial":
            items.add((*key, True))
        else:
            items.update(
                (entity["tokens"].lower(), entity["label"], r[0], entities[r[1]]["tokens"].lower())
                for r in entity["relations"]
            )
    return items


def radgraph_f1(hyp_annotation: dict, ref_annotation: dict, level: str = "complete") -> float:
    """RadGraph-F1 of one pair at ``level`` ("simple", "partial" or "complete"), as radgraph 0.1.18 computes it:
    0 when either report has no entity; only the complete level lowercases tokens."""
    if level not in LEVELS:
        raise ValueError(f"Unknown RadGraph-F1 level {level!r}; expected one of {LEVELS}.")
    if not hyp_annotation["entities"] or not ref_annotation["entities"]:
        return 0.0
    return _set_f1(_items(hyp_annotation, level), _items(ref_annotation, level))


def radgraph_f1_levels(hyp_annotation: dict, ref_annotation: dict) -> tuple[float, float, float]:
    """(simple, partial, complete) of one pair."""
    return tuple(radgraph_f1(hyp_annotation, ref_annotation, level) for level in LEVELS)  # type: ignore[return-value]


def _cxr_metric_f1(test: set, retrieved: set) -> float:
    true_positives = len(test & retrieved)
    precision = true_positives / len(retrieved) if retrieved else 0
    recall = true_positives / len(test) if test else 0
    return 2 * precision * recall / (precision + recall) if precision + recall != 0 else 0


def entity_relation_sets(annotation: dict) -> tuple[set, set]:
    """CXR-Report-Metric's entities {(tokens, label)} and relations {((tokens, label), (tokens, label), type)}."""
    entities = annotation["entities"]
    ents = {(e["tokens"], e["label"]) for e in entities.values()}
    rels = {
        ((e["tokens"], e["label"]), (entities[r[1]]["tokens"], entities[r[1]]["label"]), r[0])
        for e in entities.values()
        for r in e["relations"]
        if r[1] in entities
    }
    return ents, rels


def entity_relation_f1(hyp_annotation: dict, ref_annotation: dict) -> float:
    """RadCliQ's RadGraph feature: (entity F1 + relation F1) / 2, each 0 when its sets are empty."""
    hyp_entities, hyp_relations = entity_relation_sets(hyp_annotation)
    ref_entities, ref_relations = entity_relation_sets(ref_annotation)
    return float((_cxr_metric_f1(ref_entities, hyp_entities) + _cxr_metric_f1(ref_relations, hyp_relations)) / 2)


class F1RadGraph:
    """Upstream ``radgraph.F1RadGraph`` on batched parsing: ``(mean, per-pair scores, hyp annotations, ref
    annotations)``; with ``level="all"`` the mean and the scores are (simple, partial, complete) triples of lists.
    Pairs with an empty (or whitespace-only) side score 0 and are left out of the annotation lists."""

    def __init__(
        self,
        model_type: str = DEFAULT_MODEL_TYPE,
        model_dir: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 32,
        radgraph: RadGraph | None = None,
        weights_dir: str | os.PathLike | None = None,
    ) -> None:
        self.radgraph = radgraph or RadGraph(model_type, model_dir, device, batch_size, weights_dir)

    def __call__(self, hyps: Sequence[str] | str, refs: Sequence[str] | str, level: str = "all"):
        if level not in (*LEVELS, "all"):
            raise ValueError(f"Unknown RadGraph-F1 level {level!r}; expected one of {(*LEVELS, 'all')}.")
        hyps = [hyps] if isinstance(hyps, str) else list(hyps)
        refs = [refs] if isinstance(refs, str) else list(refs)
        if len(hyps) != len(refs):
            raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references.")
        scored = [i for i, (h, r) in enumerate(zip(hyps, refs)) if h.strip() and r.strip()]
        annotations = self.radgraph.annotate([hyps[i] for i in scored] + [refs[i] for i in scored])
        hyp_annotations, ref_annotations = annotations[: len(scored)], annotations[len(scored) :]
        per_pair = [(0.0, 0.0, 0.0)] * len(hyps)
        for i, hyp, ref in zip(scored, hyp_annotations, ref_annotations):
            per_pair[i] = radgraph_f1_levels(hyp, ref)
        if level == "all":
            lists = tuple([p[k] for p in per_pair] for k in range(3))
            return tuple(np.mean(values) for values in lists), lists, hyp_annotations, ref_annotations
        values = [p[LEVELS.index(level)] for p in per_pair]
        return np.mean(values), values, hyp_annotations, ref_annotations
