"""Build the small random-weight RadGraph fixtures and their upstream goldens.

Our RadGraph (``radvlm_grpo.scorers.radgraph``) must give exactly what the upstream ``radgraph`` package (PyPI
0.1.18, which only runs on transformers 4.x) gives, but the real weights cannot be downloaded here. So this script:

1. builds a tiny uncased BERT encoder (2 layers, hidden 64) with a WordPiece ``vocab.txt`` made from the shared report
   corpus, so that tokenization splits words as a real vocabulary would;
2. writes, for each model type (``radgraph``: v1 labels and punctuation-regex preprocessing; ``radgraph-xl``: XL
   labels and nltk preprocessing), a model folder in the official ``RRG_scorers`` layout: ``config.json`` (the DyGIE
   config), ``vocabulary/`` (AllenNLP label files) and ``weights.th``, with the encoder in ``encoder/`` and named by
   ``config.json`` as ``"encoder"``;
3. in a throwaway virtualenv holding the upstream packages on transformers 4.57.6 (made when missing), builds the
   DyGIE network with the upstream code from a fixed seed, shifts the output biases so that random weights still
   predict a realistic share of entities and relations, saves ``weights.th``, then runs upstream ``RadGraph`` on
   every report of the corpus and upstream ``F1RadGraph`` on every pair, and writes
   ``tests/fixtures/scorers/goldens_radgraph.json``.

    python scripts/goldens/make_radgraph_goldens.py [--venv /tmp/upstream-venv]

The RadCliQ feature ((entity F1 + relation F1) / 2, CXR-Report-Metric's ``radgraph_evaluate_model.py``) has no
installable upstream package; it is computed here from the upstream annotations, as that file does.
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
GOLDENS = FIXTURES / "goldens_radgraph.json"
DEFAULT_VENV = Path("/tmp/upstream-venv")
UPSTREAM_PINS = [
    "torch==2.13.*",
    "transformers==4.57.6",
    "radgraph==0.1.18",
    "f1chexbert==0.0.2",
    "bert-score==0.3.13",
    "scikit-learn<1.8",
]

MODEL_TYPES = ("radgraph", "radgraph-xl")
SEEDS = {"radgraph": 1234, "radgraph-xl": 4321}
ENCODER_DIR = "encoder"
# Label sets as the released models name them (metrics.md section 1).
NER_LABELS = {
    "radgraph": ["ANAT-DP", "OBS-DP", "OBS-U", "OBS-DA"],
    "radgraph-xl": [
        "Anatomy::definitely present",
        "Anatomy::definitely absent",
        "Anatomy::measurement::definitely present",
        "Observation::definitely present",
        "Observation::definitely absent",
        "Observation::uncertain",
        "Observation::measurement::definitely present",
    ],
}
RELATION_LABELS = ["modify", "located_at", "suggestive_of"]
# Random output layers score every span and pair about the same, so the last NER and relation layers are scaled up
# (the scores then depend on the span) and their biases are calibrated on the corpus (``_calibrate_biases``) so that
# about NER_RATE of the spans get a label and RELATION_RATE of the kept span pairs a relation: enough to exercise
# decoding, few enough to look like a parse.
NER_SCALE, NER_RATE = 20.0, 0.08
RELATION_SCALE, RELATION_RATE = 10.0, 0.25
CALIBRATION_REPORTS = 100
N_WORDS = 400


# ---------------------------------------------------------------------------------------------------------------------
# Stage 1 (any Python): vocabulary, encoder and DyGIE config.


def corpus_reports() -> list[str]:
    """Every distinct report of the corpus, in first-seen order."""
    pairs = json.loads(CORPUS.read_text(encoding="utf-8"))["pairs"]
    return list(dict.fromkeys(text for p in pairs for text in (p["hyp"], p["ref"])))


# Long words the corpus vocabulary lacks: a real word-piece vocabulary would split them too.
_RARE_WORDS = (
    "pneumomediastinum", "hydropneumothorax", "lymphangitic", "bronchiectatic", "tracheobronchomalacia",
    "hemidiaphragmatic", "pseudoaneurysmal", "cholecystectomy", "thoracoabdominal", "esophagogastric",
)  # fmt: skip


def golden_reports() -> list[str]:
    """The corpus reports, then a few RadGraph-only edge cases: a ~4000-character report (two encoder segments),
    one of long out-of-vocabulary words (words cut across a segment boundary) and words with no word piece."""
    reports = corpus_reports()
    long_text = ""
    for text in reports:
        if 100 < len(text) < 600 and len(long_text) < 4000:
            long_text += text + " "
    rare = " ".join(f"{w}{'.' if i % 7 == 6 else ''}" for i, w in enumerate(_RARE_WORDS * 7))
    zero_width = ["No acute \u200b process \u00ad here .", "\u200b \u200b", "Heart \ufeff size normal."]
    return list(dict.fromkeys([*reports, long_text.strip(), rare, *zero_width]))


def _basic_words(text: str) -> list[str]:
    """Roughly BERT's uncased basic tokenization: lowercase, strip accents, split off punctuation."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return re.findall(r"\w+|[^\w\s]", text)


def build_wordpiece_vocab(reports: list[str], n_words: int = N_WORDS) -> list[str]:
    """Specials, every character alone and as a ``##`` continuation, then the most frequent words (ties sorted)."""
    counts = collections.Counter(w for r in reports for w in _basic_words(r))
    chars = sorted({c for w in counts for c in w})
    frequent = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if len(w) > 1][:n_words]
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return list(dict.fromkeys(specials + chars + [f"##{c}" for c in chars] + frequent))


def write_encoder(folder: Path, vocab: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": len(vocab),
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    tokenizer_config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 512}
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")


def dygie_config(encoder_name: str) -> dict:
    """The DyGIE++ config of the released archives (dygiepp template values, metrics.md section 1)."""
    bert = {"model_name": encoder_name, "max_length": 512}
    return {
        "dataset_reader": {
            "type": "dygie",
            "max_span_width": 8,
            "token_indexers": {"bert": {"type": "pretrained_transformer_mismatched", **bert}},
        },
        "model": {
            "type": "dygie",
            "embedder": {"token_embedders": {"bert": {"type": "pretrained_transformer_mismatched", **bert}}},
            "initializer": {},
            "module_initializer": {},
            "loss_weights": {"ner": 1.0, "relation": 1.0, "coref": 0.0, "events": 0.0},
            "feature_size": 20,
            "max_span_width": 8,
            "target_task": "relation",
            "feedforward_params": {"num_layers": 2, "hidden_dims": 150, "dropout": 0.4},
            "modules": {
                "coref": {"spans_per_word": 0.3, "max_antecedents": 100, "coref_prop": 0},
                "ner": {},
                "relation": {"spans_per_word": 0.5},
                "events": {
                    "trigger_spans_per_word": 0.3,
                    "argument_spans_per_word": 0.8,
                    "loss_weights": {"trigger": 0.2, "arguments": 1.0},
                },
            },
        },
    }


def write_model_folder(folder: Path, model_type: str, vocab: list[str]) -> None:
    write_encoder(folder / ENCODER_DIR, vocab)
    (folder / "config.json").write_text(json.dumps(dygie_config(ENCODER_DIR), indent=2) + "\n")
    labels = folder / "vocabulary"
    labels.mkdir(parents=True, exist_ok=True)
    (labels / "non_padded_namespaces.txt").write_text("*tags\n*labels\n")
    # The NER namespace starts with the null label "" (index 0, asserted upstream); relations have no null entry.
    (labels / f"{model_type}__ner_labels.txt").write_text("\n".join(["", *NER_LABELS[model_type]]) + "\n")
    (labels / f"{model_type}__relation_labels.txt").write_text("\n".join(RELATION_LABELS) + "\n")


def ensure_venv(venv: Path) -> Path:
    """The upstream virtualenv's python, creating the venv with the pinned upstream packages when it is missing."""
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = "import radgraph, transformers; assert transformers.__version__.startswith('4.')"
    if subprocess.run([str(python), "-c", probe], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *UPSTREAM_PINS], check=True)
    return python


# ---------------------------------------------------------------------------------------------------------------------
# Stage 2 (the upstream virtualenv): weights and goldens with the upstream package.


def _upstream_build_weights(folder: Path, model_type: str) -> dict:
    """Build DyGIE with the upstream code exactly as ``radgraph.RadGraph`` does, seeded; save ``weights.th``."""
    import torch
    from dotmap import DotMap
    from radgraph.allennlp.data import Vocabulary
    from radgraph.allennlp.modules import text_field_embedders, token_embedders
    from radgraph.dygie.models import dygie

    torch.manual_seed(SEEDS[model_type])
    config = DotMap(json.loads((folder / "config.json").read_text()))
    vocab = Vocabulary.from_files(str(folder / "vocabulary"))
    bert = config.model.embedder.token_embedders.bert
    embedder = text_field_embedders.BasicTextFieldEmbedder(
        {"bert": token_embedders.PretrainedTransformerMismatchedEmbedder(bert.model_name, max_length=bert.max_length)}
    )
    model_args = config.model.toDict()
    for name in ["type", "embedder", "initializer", "module_initializer"]:
        del model_args[name]
    model = dygie.DyGIE(vocab=vocab, embedder=embedder, **model_args)
    with torch.no_grad():
        for layers in model._ner._ner_scorers.values():
            layers[1]._module.weight.mul_(NER_SCALE)
        for layer in model._relation._relation_scorers.values():
            layer.weight.mul_(RELATION_SCALE)
    torch.save(model.state_dict(), folder / "weights.th")
    state = _calibrate_biases(folder, model_type)
    torch.save(state, folder / "weights.th")
    return {"n_parameters": sum(v.numel() for v in state.values()), "keys": len(state)}


def _calibrate_biases(folder: Path, model_type: str) -> dict:
    """Set each NER label's and relation type's output bias from its score quantile on the first reports of the
    corpus, so that each label fires on about the same share of spans and each relation type on the same share of
    kept span pairs; returns the state dict."""
    import torch
    from radgraph import RadGraph

    radgraph = RadGraph(model_type=model_type, model_cache_dir=str(folder.parent), cuda=-1)
    model = radgraph.model
    ner = model._ner._ner_scorers[f"{model_type}__ner_labels"]
    relation = model._relation._relation_scorers[f"{model_type}__relation_labels"]
    captured: dict[str, list] = {"ner": [], "relation": []}
    hooks = [
        ner.register_forward_hook(lambda m, i, o: captured["ner"].append(o.reshape(-1, o.shape[-1]))),
        relation.register_forward_hook(lambda m, i, o: captured["relation"].append(o.reshape(-1, o.shape[-1]))),
    ]
    with torch.no_grad():
        radgraph([r for r in corpus_reports() if len(r.split()) > 2][:CALIBRATION_REPORTS])
        for hook in hooks:
            hook.remove()
        ner_scores, relation_scores = torch.cat(captured["ner"]), torch.cat(captured["relation"])
        ner_q = torch.quantile(ner_scores, 1 - NER_RATE / ner_scores.shape[1], dim=0)
        relation_q = torch.quantile(relation_scores, 1 - RELATION_RATE / relation_scores.shape[1], dim=0)
        ner[1]._module.bias.sub_(ner_q)
        relation.bias.sub_(relation_q)
    return model.state_dict()


def _radcliq_sets(annotation: dict) -> tuple[set, set]:
    """CXR-Report-Metric's parse_entity_relation for one report."""
    entities = annotation["entities"]
    ents = {(e["tokens"], e["label"]) for e in entities.values()}
    rels = {
        ((e["tokens"], e["label"]), (entities[r[1]]["tokens"], entities[r[1]]["label"]), r[0])
        for e in entities.values()
        for r in e["relations"]
    }
    return ents, rels


def _cxr_metric_f1(test: set, retrieved: set) -> float:
    """CXR-Report-Metric's compute_f1."""
    tp = len(test & retrieved)
    precision = tp / len(retrieved) if retrieved else 0
    recall = tp / len(test) if test else 0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0


def _upstream_goldens(fixtures: Path) -> dict:
    import importlib.metadata

    import torch
    import transformers
    from radgraph import F1RadGraph, RadGraph
    from radgraph.utils import preprocess_reports

    torch.set_num_threads(1)
    pairs = json.loads(CORPUS.read_text(encoding="utf-8"))["pairs"]
    reports = golden_reports()
    out: dict = {
        "upstream": {
            "radgraph": importlib.metadata.version("radgraph"),
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        },
        "reports": reports,
        "models": {},
    }
    for model_type in MODEL_TYPES:
        folder = fixtures / model_type
        cwd = os.getcwd()
        os.chdir(folder)  # config.json names the encoder by the relative path "encoder"
        try:
            stats = _upstream_build_weights(folder, model_type)
            # A report with no word after preprocessing (whitespace only) crashes upstream (an empty ListField);
            # ours reads it as upstream reads "" (the word "None"), and F1RadGraph scores its pairs 0 as for "".
            words = preprocess_reports(reports, model_type)
            no_words = {r for r, w in zip(reports, words) if not w["sentences"][0]}
            model = RadGraph(model_type=model_type, model_cache_dir=str(fixtures), cuda=-1)
            annotations = model(["" if r in no_words else r for r in reports])
            f1 = F1RadGraph(reward_level="all", model_type=model_type, model_cache_dir=str(fixtures), cuda=-1)
            refs = ["" if p["ref"] in no_words else p["ref"] for p in pairs]
            hyps = ["" if p["hyp"] in no_words else p["hyp"] for p in pairs]
            _, (simple, partial, complete), _, _ = f1(refs=refs, hyps=hyps)
        finally:
            os.chdir(cwd)
        ordered = [annotations[str(i)] for i in range(len(reports))]
        index = {text: i for i, text in enumerate(reports)}
        radcliq = []
        for p in pairs:
            hyp_e, hyp_r = _radcliq_sets(ordered[index[p["hyp"]]])
            ref_e, ref_r = _radcliq_sets(ordered[index[p["ref"]]])
            radcliq.append((_cxr_metric_f1(ref_e, hyp_e) + _cxr_metric_f1(ref_r, hyp_r)) / 2)
        n_entities = sum(len(a["entities"]) for a in ordered)
        n_relations = sum(len(e["relations"]) for a in ordered for e in a["entities"].values())
        out["models"][model_type] = {
            "weights": stats,
            "n_entities": n_entities,
            "n_relations": n_relations,
            "no_word_reports": sorted(reports.index(r) for r in no_words),
            "annotations": ordered,
            "pairs": [
                {"id": p["id"], "simple": s, "partial": pa, "complete": c, "radcliq_radgraph": r}
                for p, s, pa, c, r in zip(pairs, simple, partial, complete, radcliq)
            ],
        }
        print(f"{model_type}: {stats['n_parameters']} parameters, {n_entities} entities, {n_relations} relations")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Throwaway venv with the upstream packages.")
    parser.add_argument("--stage", choices=["all", "upstream"], default="all", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage == "upstream":
        goldens = json.dumps(_upstream_goldens(FIXTURES), ensure_ascii=False, separators=(",", ":"))
        GOLDENS.write_text(goldens + "\n", encoding="utf-8")
        return
    vocab = build_wordpiece_vocab(corpus_reports())
    for model_type in MODEL_TYPES:
        write_model_folder(FIXTURES / model_type, model_type, vocab)
    python = ensure_venv(args.venv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run([str(python), __file__, "--stage", "upstream"], check=True, env=env)
    print(f"wrote {GOLDENS}")


if __name__ == "__main__":
    main()
