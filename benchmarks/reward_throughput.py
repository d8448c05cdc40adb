"""RadCliQ reward throughput on a GRPO-shaped batch: ours (batched, deduplicated, cached) vs the authors' way.

A GRPO step of the paper scores prompts x 8 completions against each prompt's reference. The authors' reward workers
scored one (completion, reference) pair per request with RadEval's CompositeMetric: RadGraph-XL and CheXbert parse
one report per forward pass, bert-score embeds the pair's two texts, and the reference is encoded again for every
one of its 8 completions. Ours scores the whole batch in one call: each distinct reference and completion is encoded
once, in padded length-sorted batches.

Both sides use the same real-size random-weight models (the weights do not change the cost): RadGraph-XL's DyGIE++
with a bert-base encoder, CheXbert on bert-base, BERTScore on distilroberta-base geometry (layer 5), built here
in a temporary folder, on the same device and thread count, in one run. The authors' way is this project's scorers
run one pair per call with batch size 1 and no cache (which is what the upstream packages do, without their
per-call overheads), timed on the first ``--baseline-pairs`` pairs of the batch (the cost per pair does not depend
on the rest). Both give the same RadCliQ values (checked). Completions are MIMIC-style findings paragraphs of about
230 characters (the paper's policies write 170-210), all distinct within a prompt (no duplicate bonus).

    python benchmarks/reward_throughput.py [--prompts 64] [--generations 8] [--baseline-pairs 24] [--device cpu]
        [--dtypes float32,tf32,bfloat16] [--profile]

The lines before it say why the ratio is what it is: reports encoded per pair by each way, the encoders' arithmetic
per report (multiply-adds of the three encoders at the batch's token counts) and the rate at which each way does it,
against the device's own rate on a bert-base feed-forward matmul of one report's rows and of a batch's rows (the
arithmetic counts the encoders' layers and RadGraph's span and relation scorers; embeddings, layer norms, activations
and the other heads are left out, as is padding). The
``ceiling`` line is the speedup ours would reach doing its arithmetic at the batched matmul rate with no other cost:
no exact implementation of these three models can pass it on that device.

Where ours spends its time: the seconds inside the three encoders (RadGraph's BERT, CheXbert's BERT, BERTScore's
RoBERTa; timed with forward hooks, synchronised on a GPU) and the rest, the host-side work outside them (tokenising,
building batches, RadGraph's span, NER and relation scoring, decoding, BERTScore's matching, the features).
``--profile`` adds PyTorch's profiler table of a run of ours on the first 8 prompts.

``--dtypes float32,tf32,bfloat16`` also times ours with each ``scorer_dtype`` (``radvlm_grpo.scorers.precision``) on the
same batch and prints its agreement with float32: the largest |delta RadCliQ| and the Spearman rank correlation of
the rewards within each group of ``--generations`` completions (what GRPO's advantages see), lowest and mean.
``bfloat16+radgraph`` (benchmark only) also runs RadGraph's encoder in bfloat16, to show why the option leaves it out.

On a GPU (``--device cuda``) the matmul rates are the GPU's own in fp32 (TF32 off), and one more line gives the rate at
a large shape for scale.

The last line is ``speedup: <x> ceiling: <c>`` (ours pairs/s over the authors' way pairs/s, and the ceiling above).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from radvlm_grpo.scorers.precision import cuda_matmul_precision

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "scorers"
# Output biases of the random RadGraph scorers (against the null label's 0), set so that a report gets about a dozen
# entities and a few relations, as real parses do (the decoding and F1 costs follow the counts).
NER_BIAS = -0.28
RELATION_BIAS = -0.12


def _corpus_module():
    """The report generator of the scorer corpus (MIMIC-style findings and plausible model variations)."""
    spec = importlib.util.spec_from_file_location("make_corpus", ROOT / "scripts" / "goldens" / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_batch(prompts: int, generations: int, seed: int) -> tuple[list[str], list[str]]:
    """(completions, references), references repeated per completion; completions distinct within a prompt and from
    the reference, so that no saving comes from duplicate texts."""
    corpus = _corpus_module()
    rng = random.Random(seed)
    hyps, refs = [], []
    for _ in range(prompts):
        ref = corpus.mimic_report(rng)
        seen: set[str] = {ref}  # no completion repeats another, or its reference
        for _ in range(generations):
            text = corpus.perturb(ref, rng)
            for _ in range(50):
                if text not in seen:
                    break
                text = corpus.perturb(corpus.perturb(ref, rng), rng)
            if text in seen:
                text = f"{text} Otherwise unchanged ({len(seen)})."
            seen.add(text)
            hyps.append(text)
            refs.append(ref)
    return hyps, refs


# --- real-size random-weight models --------------------------------------------------------------------------------


def _wordpiece_vocab(texts: list[str]) -> list[str]:
    import re

    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]", t.lower())})
    chars = sorted({c for w in words for c in w})
    return list(
        dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *[f"##{c}" for c in chars], *words])
    )


def _write_bert_tokenizer(folder: Path, vocab: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


# ``--tiny``: the same three models at toy widths, to test this script and the GPU scripts on a CPU (figures meaningless).
TINY_BERT = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
TINY_ROBERTA = dict(hidden_size=32, num_hidden_layers=6, num_attention_heads=2, intermediate_size=64)


def build_models(folder: Path, texts: list[str], seed: int, tiny: bool = False) -> None:
    """RadGraph-XL (bert-base encoder), CheXbert (bert-base) and distilroberta-base, random, in the weights layout
    (``tiny``: toy widths, same layout)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import AutoModel, BertConfig, RobertaConfig, RobertaModel

    from radvlm_grpo.scorers.chexbert import CheXbertNetwork
    from radvlm_grpo.scorers.radgraph import read_label_vocabulary
    from radvlm_grpo.scorers.radgraph_model import DygieNetwork

    torch.manual_seed(seed)
    vocab = _wordpiece_vocab(texts)
    bert_base = BertConfig(**(TINY_BERT if tiny else {}))  # bert-base-uncased: 12 layers, 768 hidden, 30522 pieces

    # RadGraph-XL: the DyGIE config and label files of the fixture, a bert-base encoder, random weights.th.
    radgraph = folder / "radgraph-xl"
    shutil.copytree(FIXTURES / "radgraph-xl" / "vocabulary", radgraph / "vocabulary")
    shutil.copy(FIXTURES / "radgraph-xl" / "config.json", radgraph / "config.json")
    config = json.loads((radgraph / "config.json").read_text())
    encoder_dir = radgraph / config["model"]["embedder"]["token_embedders"]["bert"]["model_name"]
    _write_bert_tokenizer(encoder_dir, vocab)
    bert_base.save_pretrained(encoder_dir)
    labels = read_label_vocabulary(radgraph / "vocabulary")
    model = config["model"]
    network = DygieNetwork(
        AutoModel.from_config(bert_base),
        ner_sizes={ns: len(v) for ns, v in labels.items() if "ner_labels" in ns},
        relation_sizes={ns: len(v) for ns, v in labels.items() if "relation_labels" in ns},
        max_span_width=int(model["max_span_width"]),
        feature_size=int(model["feature_size"]),
        ff_layers=int(model["feedforward_params"]["num_layers"]),
        ff_hidden=model["feedforward_params"]["hidden_dims"],
        spans_per_word=float(model["modules"]["relation"]["spans_per_word"]),
    )
    with torch.no_grad():  # random scorers label nearly every span; shift them to a report's worth of findings
        for scorer in network._ner._ner_scorers.values():
            scorer[1]._module.bias.fill_(NER_BIAS)
        for scorer in network._relation._relation_scorers.values():
            scorer.bias.fill_(RELATION_BIAS)
    torch.save(network.state_dict(), radgraph / "weights.th")
    del network

    # CheXbert: bert-base + 14 heads, saved as the official checkpoint is.
    chexbert = folder / "chexbert"
    _write_bert_tokenizer(chexbert, vocab)
    bert_base.save_pretrained(chexbert)
    state = {f"module.{k}": v for k, v in CheXbertNetwork(bert_base).state_dict().items()}
    torch.save({"model_state_dict": state}, chexbert / "chexbert.pth")

    # BERTScore: distilroberta-base geometry (6 layers, 768 hidden, 50265 BPE tokens), BPE trained on the reports.
    roberta = folder / "bertscore" / "distilroberta-base"
    roberta.mkdir(parents=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=4000, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    bpe.save_model(str(roberta))
    (roberta / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "RobertaTokenizer", "model_max_length": 512})
    )
    widths = (
        TINY_ROBERTA
        if tiny
        else dict(hidden_size=768, num_hidden_layers=6, num_attention_heads=12, intermediate_size=3072)
    )
    geometry = RobertaConfig(
        vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
        eos_token_id=2, layer_norm_eps=1e-5, **widths,
    )  # fmt: skip
    RobertaModel(geometry).save_pretrained(roberta)


# --- the two ways ----------------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- where the time goes: encoder arithmetic against the device's matrix-multiply rate ------------------------------


def encoder_flops(model: torch.nn.Module, lengths: list[int]) -> float:
    """Multiply-add FLOPs of a BERT-style encoder's layers over sequences of ``lengths`` tokens, without padding:
    per layer and token 8h^2 (Q, K, V, output projections) + 4hi (feed-forward), plus 4n^2h per sequence (scores and
    weighted sum). Embeddings and heads are left out (RadGraph's span and relation scorers: ``radgraph_head_flops``)."""
    h, i = model.config.hidden_size, model.config.intermediate_size
    layers = len(model.encoder.layer)
    return float(sum(layers * (n * (8 * h * h + 4 * h * i) + 4 * n * n * h) for n in lengths))


def _dense_flops(layers) -> int:
    """Multiply-add FLOPs of one row through a chain of linear layers."""
    return sum(2 * layer.in_features * layer.out_features for layer in layers)


def radgraph_head_flops(radgraph, n_words: list[int]) -> float:
    """Multiply-add FLOPs of RadGraph's span scorers (NER and mention pruning) and relation scorer for reports of
    ``n_words`` words, as the model defines them at their least: the first layer of the span scorers on each word's
    vector (for the spans it begins and ends) and the later layers per span; per kept span its two halves of the
    relation scorer's first layer, and per ordered pair of kept spans the product term, the later layers and the
    output. Padding and the span-embedding copies are not counted."""
    from radvlm_grpo.scorers.radgraph_model import n_spans

    network = radgraph.network
    h = network.hidden
    width = radgraph.max_span_width
    total = 0.0
    for scorer in (
        network._ner._ner_scorers[radgraph.ner_namespace],
        network._relation._mention_pruners[radgraph.relation_namespace]._scorer,
    ):
        feedforward, output = (part._module for part in scorer)
        first, *rest = feedforward._linear_layers
        per_word = 2 * 2 * h * first.out_features
        per_span = _dense_flops(rest) + _dense_flops([output])
        total += sum(n * per_word + n_spans(n, width) * per_span for n in n_words)
    feedforward = network._relation._relation_feedforwards[radgraph.relation_namespace]
    first, *rest = feedforward._linear_layers
    span_dim = first.in_features // 3
    per_span = 2 * 2 * span_dim * first.out_features
    per_pair = 2 * span_dim * first.out_features + span_dim + _dense_flops(rest)
    per_pair += _dense_flops([network._relation._relation_scorers[radgraph.relation_namespace]])
    kept = [math.ceil(n * network.spans_per_word) for n in n_words]
    return total + sum(k * per_span + k * k * per_pair for k in kept)


def report_flops(scorer, texts: list[str], heads: bool = True) -> float:
    """FLOPs of running ``texts`` through RadCliQ's three models once each: the three encoders' layers and (``heads``)
    RadGraph's span and relation scorers."""
    radgraph = scorer.radgraph
    affixes = len(radgraph._prefix) + len(radgraph._suffix)
    words = [radgraph.words(t) for t in texts]
    radgraph_lengths = [len(radgraph._doc(w).pieces) + affixes for w in words]
    head = radgraph_head_flops(radgraph, [len(w) for w in words]) if heads else 0.0
    return head + (
        encoder_flops(radgraph.network._embedder.transformer, radgraph_lengths)
        + encoder_flops(scorer.chexbert.network.bert, [len(ids) for ids in scorer.chexbert.tokenize(texts)])
        + encoder_flops(scorer.bertscore.model, [len(ids) for ids in scorer.bertscore.tokenize(texts)])
    )


class EncoderClock:
    """Wall seconds spent inside the forward passes of ``modules`` (synchronised on a GPU), from forward hooks."""

    def __init__(self, modules: list[torch.nn.Module], device: torch.device) -> None:
        self.device, self.seconds, self._started = device, 0.0, 0.0
        self.handles = [
            h for m in modules for h in (m.register_forward_pre_hook(self._pre), m.register_forward_hook(self._post))
        ]

    def _pre(self, *_args) -> None:
        _sync(self.device)
        self._started = time.perf_counter()

    def _post(self, *_args) -> None:
        _sync(self.device)
        self.seconds += time.perf_counter() - self._started

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def encoders(scorer) -> list[torch.nn.Module]:
    """The three encoders of a RadCliQ scorer: RadGraph's BERT, CheXbert's BERT, BERTScore's RoBERTa."""
    return [scorer.radgraph.network._embedder.transformer, scorer.chexbert.network.bert, scorer.bertscore.model]


def exact_fp32():
    """TF32 off for the duration (a GPU's fp32 rate is measured in fp32)."""
    return cuda_matmul_precision(tf32=False)


def gemm_rate(device: torch.device, rows: int, seconds: float = 1.0) -> float:
    """FLOP/s of a bert-base feed-forward matmul (rows x 768 by 768 x 3072) on ``device``, in fp32."""
    with exact_fp32():
        return _gemm_rate(device, rows, seconds)


def _gemm_rate(device: torch.device, rows: int, seconds: float) -> float:
    x = torch.randn(rows, 768, device=device)
    w = torch.randn(3072, 768, device=device)
    torch.nn.functional.linear(x, w)
    _sync(device)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for _ in range(10):
            torch.nn.functional.linear(x, w)
        _sync(device)
        runs += 10
    return 2 * rows * 768 * 3072 * runs / (time.perf_counter() - started)


def within_group_spearman(values: np.ndarray, reference: np.ndarray, group: int) -> np.ndarray:
    """Spearman correlation of ``values`` with ``reference`` within each consecutive group of ``group`` pairs (1.0
    where both are constant in a group, NaN where only one is)."""
    from scipy.stats import spearmanr

    out = []
    for start in range(0, len(values), group):
        a, b = values[start : start + group], reference[start : start + group]
        if np.ptp(a) == 0 or np.ptp(b) == 0:
            out.append(1.0 if np.ptp(a) == np.ptp(b) == 0 else float("nan"))
        else:
            out.append(float(spearmanr(a, b).statistic))
    return np.array(out)


BENCH_DTYPES = ("float32", "tf32", "bfloat16", "bfloat16+radgraph")


def scorer_with_dtype(workdir: Path, device: torch.device, batch_size: int, dtype: str):
    """A fresh RadCliQ on the benchmark's models with ``scorer_dtype`` applied (``bfloat16+radgraph``: RadGraph's
    encoder in bfloat16 as well)."""
    from radvlm_grpo.scorers.precision import set_scorer_dtype
    from radvlm_grpo.scorers.radcliq import RadCliQ

    scorer = RadCliQ("radgraph-xl", weights_dir=workdir, device=device, batch_size=batch_size, cache_size=4096)
    set_scorer_dtype(scorer, dtype.split("+")[0])
    if dtype == "bfloat16+radgraph":
        scorer.radgraph.network._embedder.transformer.to(torch.bfloat16)
    return scorer


def compare_dtypes(
    dtypes: list[str], workdir: Path, device: torch.device, args, hyps, refs, exact: np.ndarray, exact_rate: float
) -> None:
    """Throughput and agreement with float32 of each ``scorer_dtype`` on the same batch."""
    warm_hyps, warm_refs = make_batch(2, 4, args.seed + 1)
    for dtype in dtypes:
        if dtype == "float32":
            continue
        scorer = scorer_with_dtype(workdir, device, args.batch_size, dtype)
        scorer.score(warm_hyps, warm_refs)
        scorer.clear_cache()
        _sync(device)
        started = time.perf_counter()
        values = scorer.score(hyps, refs)
        _sync(device)
        rate = len(hyps) / (time.perf_counter() - started)
        rho = within_group_spearman(values, exact, args.generations)
        note = " (TF32 is a CUDA mode: on a CPU this is float32)" if dtype == "tf32" and device.type != "cuda" else ""
        print(
            f"scorer_dtype {dtype}: {rate:.2f} pairs/s ({rate / exact_rate:.2f}x float32); max |delta RadCliQ| "
            f"{np.max(np.abs(values - exact)):.4f}; within-group Spearman min {np.nanmin(rho):.4f} mean "
            f"{np.nanmean(rho):.4f} over {len(rho)} groups of {args.generations}, {int(np.sum(rho < 1))} not 1, "
            f"{int(np.isnan(rho).sum())} undefined{note}"
        )
        del scorer


def profile_table(scorer, hyps: list[str], refs: list[str], device: torch.device) -> str:
    """PyTorch profiler's table (top 15 by self time) of one run of ``scorer`` on these pairs, cache cleared."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    scorer.clear_cache()
    with profile(activities=activities) as prof:
        scorer.score(hyps, refs)
        _sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=15)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--baseline-pairs", type=int, default=24, help="pairs timed the authors' way")
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads for both (default: torch's, i.e. OMP_NUM_THREADS)"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dtypes",
        default="float32",
        help=f"comma-separated scorer_dtypes to time and compare with float32 (of {', '.join(BENCH_DTYPES)})",
    )
    parser.add_argument("--profile", action="store_true", help="print PyTorch's profiler table of ours (8 prompts)")
    parser.add_argument("--tiny", action="store_true", help="toy-width models: tests this script, measures nothing")
    args = parser.parse_args(argv)
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    unknown = [d for d in dtypes if d not in BENCH_DTYPES]
    if unknown:
        parser.error(f"unknown --dtypes {unknown}; choose from {', '.join(BENCH_DTYPES)}")

    from radvlm_grpo.scorers.radcliq import RadCliQ

    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    device = torch.device(args.device)
    hyps, refs = make_batch(args.prompts, args.generations, args.seed)
    n_texts = len(set(hyps) | set(refs))
    print(
        f"batch: {args.prompts} prompts x {args.generations} completions = {len(hyps)} pairs, {n_texts} distinct "
        f"texts, {np.mean([len(h) for h in hyps]):.0f} characters per completion; device {device}, {threads} threads"
    )
    workdir = Path(tempfile.mkdtemp(prefix="radcliq-bench-"))
    try:
        started = time.perf_counter()
        build_models(workdir, hyps + refs, args.seed, tiny=args.tiny)
        ours = RadCliQ("radgraph-xl", weights_dir=workdir, device=device, batch_size=args.batch_size, cache_size=4096)
        print(f"models built and loaded in {time.perf_counter() - started:.1f} s")
        warm_hyps, warm_refs = make_batch(2, 4, args.seed + 1)
        ours.score(warm_hyps, warm_refs)  # first-call costs (allocations, kernels) out of both timings
        ours.clear_cache()
        warm_ours = ours.encoded_reports

        clock = EncoderClock(encoders(ours), device)
        _sync(device)
        started = time.perf_counter()
        with exact_fp32():
            values = ours.score(hyps, refs)
        _sync(device)
        ours_seconds = time.perf_counter() - started
        clock.remove()
        ours_rate = len(hyps) / ours_seconds
        ours_encoded = ours.encoded_reports - warm_ours
        ours_flops = report_flops(ours, list(dict.fromkeys(refs + hyps)))
        ours_encoder_flops = report_flops(ours, list(dict.fromkeys(refs + hyps)), heads=False)

        # The authors' way: the same models, one pair per call, references re-encoded, batch size 1, no cache.
        ours.radgraph.batch_size = ours.chexbert.batch_size = 1
        authors = RadCliQ(radgraph=ours.radgraph, bertscore=ours.bertscore, chexbert=ours.chexbert, cache_size=0)
        n = min(args.baseline_pairs, len(hyps))
        authors.score(warm_hyps[:1], warm_refs[:1])
        warm_encoded = authors.encoded_reports
        _sync(device)
        started = time.perf_counter()
        baseline = [authors.score([h], [r])[0] for h, r in zip(hyps[:n], refs[:n])]
        _sync(device)
        authors_seconds = time.perf_counter() - started
        authors_rate = n / authors_seconds
        authors_encoded = authors.encoded_reports - warm_encoded
        authors_flops = sum(report_flops(ours, [h, r]) for h, r in zip(hyps[:n], refs[:n]))
        tokens = round(float(np.mean([len(ids) for ids in ours.chexbert.tokenize(hyps)])))
        single_gemm, batched_gemm = gemm_rate(device, tokens), gemm_rate(device, args.batch_size * tokens)
        large_gemm = gemm_rate(device, 16384) if device.type == "cuda" else None
        ours.radgraph.batch_size = ours.chexbert.batch_size = args.batch_size
        if args.profile:
            k = min(8, args.prompts) * args.generations
            print(profile_table(ours, hyps[:k], refs[:k], device))
        if len(dtypes) > 1 or dtypes != ["float32"]:
            compare_dtypes(dtypes, workdir, device, args, hyps, refs, values, len(hyps) / ours_seconds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    difference = float(np.max(np.abs(np.array(baseline) - values[:n])))
    print(f"ours:         {ours_rate:8.2f} pairs/s ({len(hyps)} pairs in {ours_seconds:.2f} s)")
    print(f"authors' way: {authors_rate:8.2f} pairs/s ({n} pairs in {authors_seconds:.2f} s)")
    print(f"max |RadCliQ ours - authors' way| on those pairs: {difference:.1e}")
    outside = ours_seconds - clock.seconds
    print(
        f"ours' time: {clock.seconds:.2f} s inside the three encoders, {outside:.2f} s outside them "
        f"({outside / ours_seconds:.1%}: tokenising, batching, RadGraph's span and relation scoring, decoding, "
        "BERTScore matching, features)"
    )
    # Why the ratio is what it is: reports encoded per pair, and how fast each way does the encoders' arithmetic
    # against this device's own matrix-multiply rate (the ceiling of any exact implementation).
    ours_per_pair, authors_per_pair = ours_encoded / len(hyps), authors_encoded / n
    print(f"reports encoded per pair: ours {ours_per_pair:.3f}, authors' way {authors_per_pair:.3f}")
    ours_rate_flops, authors_rate_flops = ours_flops / ours_seconds, authors_flops / authors_seconds
    print(
        f"arithmetic: {ours_flops / ours_encoded / 1e9:.1f} GFLOP per report ({1 - ours_encoder_flops / ours_flops:.1%} of "
        f"it RadGraph's span and relation scorers, the rest the encoders' layers); run at "
        f"{ours_rate_flops / 1e9:.0f} GFLOP/s ours, {authors_rate_flops / 1e9:.0f} GFLOP/s the authors' way"
    )
    print(
        f"device matmul rate (bert-base feed-forward): {single_gemm / 1e9:.0f} GFLOP/s at one report's {tokens} rows, "
        f"{batched_gemm / 1e9:.0f} GFLOP/s at {args.batch_size} reports' rows; ours at {ours_rate_flops / batched_gemm:.0%} of the "
        "latter"
    )
    if large_gemm is not None:
        print(
            f"device fp32 matmul rate at 16384 rows (for scale): {large_gemm / 1e9:.0f} GFLOP/s; ours at "
            f"{ours_rate_flops / large_gemm:.1%} of it"
        )
    ceiling = authors_seconds / n / (ours_flops / len(hyps) / batched_gemm)
    speedup = ours_rate / authors_rate
    print(f"ceiling: speedup {ceiling:.2f} if ours did its arithmetic at that rate with no other cost")
    print(
        f"ours reaches {speedup / ceiling:.3f} of the ceiling ({speedup / ceiling * ours_encoder_flops / ours_flops:.3f} "
        "of a ceiling that counts the encoders' layers only)"
    )
    print(f"speedup: {speedup:.2f} ceiling: {ceiling:.2f}")


if __name__ == "__main__":
    main()
