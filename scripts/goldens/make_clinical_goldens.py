"""Build the small random-weight CheXbert and BERTScore fixtures and their upstream goldens (and RadCliQ's).

Our CheXbert and BERTScore (``radvlm_grpo.scorers``) must give what the upstream ``f1chexbert`` 0.0.2 and
``bert-score`` 0.3.13 give on transformers 4.57.6, but no real weights can be downloaded here. So this script, in a
throwaway virtualenv holding the upstream packages (made when missing):

1. builds vocabularies from the shared report corpus (``tests/fixtures/scorers/corpus.json``): a WordPiece
   ``vocab.txt`` for the uncased BERT models and a byte-level BPE (``vocab.json`` + ``merges.txt``) for RoBERTa;
2. builds seeded random-weight models with the upstream stack and saves them as fixtures (each well under 2 MB):
   ``chexbert/`` (a tiny BERT with CheXbert's 14 heads, saved as the official ``chexbert.pth`` is: the
   ``model_state_dict`` of a DataParallel model, keys prefixed ``module.``), ``bertscore/distilroberta-base/`` and
   ``bertscore/distilbert-base-uncased/`` (six layers, so that layer 5 is a real cut);
3. runs upstream ``F1CheXbert`` (labels in both modes, [CLS] embeddings, F1 on several pair sets), upstream
   ``BERTScorer`` on every pair, one pair per call as the authors' reward did (raw and baseline-rescaled, with
   bert-score's own baseline files), and once on all pairs in one call, pycocoevalcap's per-sample BLEU-2 (RadEval's
   RadCliQ BLEU), and, when ``goldens_radgraph.json`` exists, RadCliQ-v1 per pair the CXR-Report-Metric way
   (scikit-learn ``StandardScaler`` then the linear model) from those upstream features;
4. writes ``tests/fixtures/scorers/goldens_clinical.json``.

    python scripts/goldens/make_clinical_goldens.py [--venv /tmp/upstream-venv] [--no-build]

``--no-build`` keeps the fixture weights and only recomputes the goldens (e.g. once the RadGraph goldens exist).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "scorers"
CORPUS = FIXTURES / "corpus.json"
GOLDENS = FIXTURES / "goldens_clinical.json"
RADGRAPH_GOLDENS = FIXTURES / "goldens_radgraph.json"
CHEXBERT_DIR = FIXTURES / "chexbert"
BERTSCORE_DIR = FIXTURES / "bertscore"
DEFAULT_VENV = Path("/tmp/upstream-venv")
UPSTREAM_PINS = [
    "torch==2.13.*",
    "transformers==4.57.6",
    "radgraph==0.1.18",
    "f1chexbert==0.0.2",
    "bert-score==0.3.13",
    "scikit-learn<1.8",
    "pycocoevalcap==1.2",
]
SEEDS = {"chexbert": 11, "distilroberta-base": 22, "distilbert-base-uncased": 33}
N_WORDS = {"chexbert": 300, "distilbert-base-uncased": 500}
BPE_VOCAB_SIZE = 900
NUM_LAYERS = 5  # bert-score's default layer for both models
HEAD_SCALE = 8.0  # CheXbert head weights, so that random heads give varied labels

# RadCliQ-v1 (CXR-Report-Metric radcliq-v1.pkl, full precision; metrics.md section 4).
RADCLIQ_V1 = {
    "mean": [0.5379231241355762, 0.6175725628125001, 0.7647942121140658, 0.44738335396242174],
    "scale": [0.3028258411486429, 0.22430938459304575, 0.2539439110169773, 0.2989271671041838],
    "var": [0.09170349006738311, 0.05031470001651091, 0.06448750994259847, 0.08935745123293264],
    "coefs": [-0.37708368261038905, -0.37030009974480316, -0.25261621789593225, 4.315048405024756e-12,
              2.4665525613232559e-10],
}  # fmt: skip


def corpus() -> tuple[list[dict], list[str]]:
    """The corpus pairs and every distinct report, in first-seen order."""
    pairs = json.loads(CORPUS.read_text(encoding="utf-8"))["pairs"]
    return pairs, list(dict.fromkeys(text for p in pairs for text in (p["hyp"], p["ref"])))


# ---------------------------------------------------------------------------------------------------------------------
# Vocabularies


def _basic_words(text: str) -> list[str]:
    """Roughly BERT's uncased basic tokenization: lowercase, strip accents, split off punctuation."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return re.findall(r"\w+|[^\w\s]", text)


def wordpiece_vocab(reports: list[str], n_words: int) -> list[str]:
    """Specials, every character alone and as a ``##`` continuation, then the most frequent words (ties sorted)."""
    counts = collections.Counter(w for r in reports for w in _basic_words(r))
    chars = sorted({c for w in counts for c in w})
    frequent = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1][:n_words]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return list(dict.fromkeys(specials + chars + [f"##{c}" for c in chars] + frequent))


def write_wordpiece(folder: Path, vocab: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


def write_bpe(folder: Path, reports: list[str]) -> int:
    """A byte-level BPE trained on the corpus (and its lowercased copy), with RoBERTa's special tokens first."""
    from tokenizers import ByteLevelBPETokenizer

    folder.mkdir(parents=True, exist_ok=True)
    texts = [r for r in reports if r.strip()] + [r.lower() for r in reports if r.strip()]
    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(
        texts,
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
        show_progress=False,
    )
    tokenizer.save_model(str(folder))
    config = {"tokenizer_class": "RobertaTokenizer", "model_max_length": 512}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return tokenizer.get_vocab_size()


# ---------------------------------------------------------------------------------------------------------------------
# Stage 2 (the upstream virtualenv): fixture weights and goldens.


def _save_model(model, folder: Path) -> int:
    model.save_pretrained(str(folder), safe_serialization=True)
    return sum(p.numel() for p in model.state_dict().values())


def _build_fixtures(reports: list[str]) -> dict:
    import torch
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizer,
        DistilBertConfig,
        DistilBertModel,
        RobertaConfig,
        RobertaModel,
    )

    stats = {}
    # CheXbert: tiny BERT + 14 heads, saved like the official checkpoint.
    vocab = wordpiece_vocab(reports, N_WORDS["chexbert"])
    write_wordpiece(CHEXBERT_DIR, vocab)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=512, type_vocab_size=2, pad_token_id=0,
    )  # fmt: skip
    config.save_pretrained(str(CHEXBERT_DIR))
    torch.manual_seed(SEEDS["chexbert"])
    bert = BertModel(config).eval()
    tokenizer = BertTokenizer.from_pretrained(str(CHEXBERT_DIR))
    with torch.no_grad():
        cls = torch.cat(
            [
                bert(torch.tensor([tokenizer.encode(r[:2000], truncation=True, max_length=512)]))[0][:, 0]
                for r in reports
            ]
        )
        center, spread = cls.mean(0), cls.std(0) + 1e-6
        heads = {}
        for i in range(14):
            classes = 4 if i < 13 else 2
            weight = torch.randn(classes, config.hidden_size) * HEAD_SCALE / spread
            heads[f"linear_heads.{i}.weight"] = weight
            heads[f"linear_heads.{i}.bias"] = -(weight @ center) + 0.5 * torch.randn(classes)
    state = {f"module.bert.{k}": v for k, v in bert.state_dict().items()}
    state.update({f"module.{k}": v for k, v in heads.items()})
    torch.save({"model_state_dict": collections.OrderedDict(state), "epoch": 0}, CHEXBERT_DIR / "chexbert.pth")
    stats["chexbert"] = {"n_parameters": sum(v.numel() for v in state.values()), "vocab": len(vocab)}

    # BERTScore models: six layers each, so that keeping five is a real cut.
    folder = BERTSCORE_DIR / "distilbert-base-uncased"
    vocab = wordpiece_vocab(reports, N_WORDS["distilbert-base-uncased"])
    write_wordpiece(folder, vocab)
    torch.manual_seed(SEEDS["distilbert-base-uncased"])
    config = DistilBertConfig(
        vocab_size=len(vocab), dim=32, n_layers=6, n_heads=2, hidden_dim=64, max_position_embeddings=512,
        pad_token_id=0,
    )  # fmt: skip
    stats["distilbert-base-uncased"] = {"n_parameters": _save_model(DistilBertModel(config).eval(), folder)}

    folder = BERTSCORE_DIR / "distilroberta-base"
    vocab_size = write_bpe(folder, reports)
    torch.manual_seed(SEEDS["distilroberta-base"])
    config = RobertaConfig(
        vocab_size=vocab_size, hidden_size=32, num_hidden_layers=6, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        layer_norm_eps=1e-5,
    )  # fmt: skip
    stats["distilroberta-base"] = {"n_parameters": _save_model(RobertaModel(config).eval(), folder)}
    for name, value in stats.items():
        print(f"fixture {name}: {value}")
    return stats


class _LocalBert:
    """Stands in for f1chexbert's hard-coded ``from_pretrained('bert-base-uncased')`` calls."""

    def __init__(self, cls) -> None:
        self.cls = cls

    def from_pretrained(self, *args, **kwargs):
        return self.cls.from_pretrained(str(CHEXBERT_DIR))


def _chexbert_goldens(pairs: list[dict], reports: list[str]) -> dict:
    import f1chexbert.f1chexbert as upstream
    import pandas as pd
    import torch
    from transformers import AutoConfig, BertTokenizer

    upstream.CACHE_DIR = str(CHEXBERT_DIR)
    upstream.BertTokenizer = _LocalBert(BertTokenizer)
    upstream.AutoConfig = _LocalBert(AutoConfig)
    model = upstream.F1CheXbert(device="cpu")
    ids, embeddings, rrg, classes = [], [], [], []
    class_of = {"": 0, 1: 1, 0: 2, -1: 3}
    with torch.no_grad():
        for report in reports:
            tokens = upstream.tokenize(pd.Series([report]), model.tokenizer)[0]
            ids.append(tokens)
            batch = torch.LongTensor([tokens])
            hidden = model.model.bert(batch, attention_mask=torch.ones_like(batch, dtype=torch.float))[0]
            embeddings.append([float(x) for x in hidden[0, 0]])
            rrg.append(model.get_label(report, mode="rrg"))
            classes.append([class_of[v] for v in model.get_label(report, mode="classification")])
    subsets = {
        "all": [p["id"] for p in pairs],
        "published": [p["id"] for p in pairs if p["category"].startswith("published")],
        "mimic": [p["id"] for p in pairs if p["category"] == "mimic"],
        "first3": [p["id"] for p in pairs[:3]],
        "odd": [p["id"] for p in pairs if p["category"] in ("odd", "empty", "whitespace")],
    }
    by_id = {p["id"]: p for p in pairs}
    f1 = {}
    for name, chosen in subsets.items():
        hyps, refs = [by_id[i]["hyp"] for i in chosen], [by_id[i]["ref"] for i in chosen]
        accuracy, pe_accuracy, cr, cr_5 = model(hyps, refs)
        f1[name] = {
            "ids": chosen,
            "chexbert_accuracy_5": float(accuracy),
            "pe_accuracy": [float(x) for x in pe_accuracy],
            "chexbert_micro_f1_14": cr["micro avg"]["f1-score"],
            "chexbert_macro_f1_14": cr["macro avg"]["f1-score"],
            "chexbert_micro_precision_14": cr["micro avg"]["precision"],
            "chexbert_micro_recall_14": cr["micro avg"]["recall"],
            "chexbert_micro_f1_5": cr_5["micro avg"]["f1-score"],
            "chexbert_macro_f1_5": cr_5["macro avg"]["f1-score"],
        }
    positives = [sum(r) for r in zip(*rrg)]
    print(f"chexbert: positives per condition {positives}; all-pairs F1 {f1['all']}"[:300])
    return {"input_ids": ids, "embeddings": embeddings, "labels_rrg": rrg, "classes": classes, "f1": f1}


def _bertscore_goldens(pairs: list[dict], reports: list[str]) -> dict:
    import bert_score
    from bert_score import BERTScorer
    from bert_score.utils import sent_encode

    out = {}
    package = Path(bert_score.__file__).parent / "rescale_baseline" / "en"
    hyps, refs = [p["hyp"] for p in pairs], [p["ref"] for p in pairs]
    for name in ("distilroberta-base", "distilbert-base-uncased"):
        folder = str(BERTSCORE_DIR / name)
        common = dict(model_type=folder, num_layers=NUM_LAYERS, idf=False, lang="en", device="cpu", nthreads=0)
        raw = BERTScorer(**common)
        rescaled = BERTScorer(**common, rescale_with_baseline=True, baseline_path=str(package / f"{name}.tsv"))
        result = {"raw": {"P": [], "R": [], "F": []}, "rescaled": {"P": [], "R": [], "F": []}}
        for hyp, ref in zip(hyps, refs):
            for key, scorer in (("raw", raw), ("rescaled", rescaled)):
                p, r, f = scorer.score([hyp], [ref])
                for k, v in zip("PRF", (p, r, f)):
                    result[key][k].append(float(v[0]))
        _, _, f_batched = rescaled.score(hyps, refs, batch_size=64)
        result["rescaled_one_call_F"] = [float(x) for x in f_batched]
        result["input_ids"] = [sent_encode(raw._tokenizer, r) for r in reports]
        result["tokenizer"] = type(raw._tokenizer).__name__
        out[name] = result
        differ = sum(abs(a - b) > 1e-6 for a, b in zip(result["rescaled"]["F"], result["rescaled_one_call_F"]))
        print(f"bertscore {name}: {result['tokenizer']}, one call vs per pair differ on {differ} pairs")
    return out


def _bleu_goldens(pairs: list[dict]) -> list[float]:
    from pycocoevalcap.bleu.bleu import Bleu

    gts = {i: [p["ref"]] for i, p in enumerate(pairs)}
    res = {i: [p["hyp"]] for i, p in enumerate(pairs)}
    _, scores = Bleu(2).compute_score(gts, res, verbose=0)
    return [float(x) for x in scores[1]]  # RadEval's Bleu(n=2) returns the BLEU-2 list


def _radcliq_goldens(pairs: list[dict], reports: list[str], chexbert: dict, bertscore: dict, bleu: list) -> dict:
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    if not RADGRAPH_GOLDENS.is_file():
        print(f"no {RADGRAPH_GOLDENS.name}: RadCliQ goldens skipped (rerun with --no-build once it exists)")
        return {}
    radgraph = json.loads(RADGRAPH_GOLDENS.read_text(encoding="utf-8"))
    scaler = StandardScaler()
    scaler.mean_ = np.array(RADCLIQ_V1["mean"])
    scaler.scale_ = np.array(RADCLIQ_V1["scale"])
    scaler.var_ = np.array(RADCLIQ_V1["var"])
    scaler.n_features_in_ = 4
    scaler.n_samples_seen_ = 160
    coefs = np.array(RADCLIQ_V1["coefs"])
    index = {text: i for i, text in enumerate(reports)}
    emb = np.array(chexbert["embeddings"], dtype=np.float32)
    hyp_emb = emb[[index[p["hyp"]] for p in pairs]]
    ref_emb = emb[[index[p["ref"]] for p in pairs]]
    dot = np.einsum("nd,nd->n", ref_emb, hyp_emb)
    norms = np.linalg.norm(ref_emb, axis=1) * np.linalg.norm(hyp_emb, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        semb = np.where(norms > 0, dot / norms, 0.0)
    out = {}
    for model_type, model in radgraph["models"].items():
        by_id = {row["id"]: row["radcliq_radgraph"] for row in model["pairs"]}
        features = np.column_stack(
            [
                [by_id[p["id"]] for p in pairs],
                bertscore["distilroberta-base"]["rescaled"]["F"],
                semb,
                bleu,
            ]
        ).astype(np.float64)
        # CXR-Report-Metric CompositeMetric.predict: scale, append a ones column, dot the coefficients.
        normed = np.concatenate([scaler.transform(features), np.ones((len(features), 1))], axis=1)
        out[model_type] = {
            "features": {k: [float(x) for x in features[:, j]] for j, k in enumerate(RADCLIQ_COLS)},
            "radcliq": [float(x) for x in normed @ coefs],
        }
        print(f"radcliq ({model_type}): mean {float(np.mean(normed @ coefs)):.5f}")
    return out


RADCLIQ_COLS = ("radgraph", "bertscore", "semb", "bleu")


def _upstream_stage(build: bool) -> None:
    import f1chexbert
    import torch
    import transformers

    torch.set_num_threads(1)
    pairs, reports = corpus()
    weights = _build_fixtures(reports) if build else None
    chexbert = _chexbert_goldens(pairs, reports)
    bertscore = _bertscore_goldens(pairs, reports)
    bleu = _bleu_goldens(pairs)
    goldens = {
        "upstream": {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "f1chexbert": getattr(f1chexbert, "__version__", "0.0.2"),
            "bert-score": "0.3.13",
            "pycocoevalcap": "1.2",
        },
        "seeds": SEEDS,
        "reports": reports,
        "pair_ids": [p["id"] for p in pairs],
        "chexbert": chexbert,
        "bertscore": bertscore,
        "bleu2": bleu,
        "radcliq": _radcliq_goldens(pairs, reports, chexbert, bertscore, bleu),
    }
    if weights is not None:
        goldens["fixture_parameters"] = weights
    elif GOLDENS.is_file():
        goldens["fixture_parameters"] = json.loads(GOLDENS.read_text(encoding="utf-8")).get("fixture_parameters")
    GOLDENS.write_text(json.dumps(goldens, ensure_ascii=False) + "\n", encoding="utf-8")


def ensure_venv(venv: Path) -> Path:
    """The upstream virtualenv's python, creating it with the pinned upstream packages when it is missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = (
        "import f1chexbert, bert_score, pycocoevalcap, sklearn, transformers; "
        "assert transformers.__version__.startswith('4.')"
    )
    if subprocess.run([str(python), "-c", probe], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *UPSTREAM_PINS], check=True)
    return python


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Throwaway venv with the upstream packages.")
    parser.add_argument("--no-build", action="store_true", help="Keep the fixture weights; recompute goldens only.")
    parser.add_argument("--stage", choices=["all", "upstream"], default="all", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage == "upstream":
        _upstream_stage(build=not args.no_build)
        return
    python = ensure_venv(args.venv)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    command = [str(python), __file__, "--stage", "upstream"] + (["--no-build"] if args.no_build else [])
    subprocess.run(command, check=True, env=env)
    print(f"wrote {GOLDENS}")


if __name__ == "__main__":
    main()
