"""Goldens for texts that contain the encoders' special-token strings (``<s>``, ``</s>``, ``<mask>``, ``[CLS]``...).

A policy can learn to write such strings, and transformers 5 tokenizes them differently from the slow tokenizers that
bert-score 0.3.13 and f1chexbert 0.0.2 used on transformers 4 (for RoBERTa: ``<mask>`` no longer swallows the space
before it, and every segment after a special token gets its own prefix space). This script runs the upstream packages
on the existing fixture weights (``tests/fixtures/scorers``, left untouched) in the same throwaway virtualenv as
``make_clinical_goldens.py`` and writes ``tests/fixtures/scorers/goldens_special_tokens.json``:

- bert-score's ``sent_encode`` ids of every text, for distilroberta-base and distilbert-base-uncased;
- bert-score's baseline-rescaled P, R, F of every pair, one pair per call, both models;
- f1chexbert's token ids of every text.

    python scripts/goldens/make_special_token_goldens.py [--venv /tmp/upstream-venv]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_clinical_goldens as clinical  # noqa: E402  (a sibling script, not a package)

GOLDENS = clinical.FIXTURES / "goldens_special_tokens.json"
# (hypothesis, reference): RoBERTa's and BERT's special strings inside, at the ends, glued to words, in other cases.
PAIRS = [
    ("Small <mask> effusion.", "Small left effusion."),
    ("No acute </s> process <s> seen.", "No acute process seen."),
    ("Mild cardiomegaly <mask>", "Mild cardiomegaly."),
    ("<mask> pleural effusion.", "Small pleural effusion."),
    ("Right<mask>sided effusion.", "Right-sided effusion."),
    ("<s>", "No acute process."),
    ("</s> No pneumothorax.", "No pneumothorax."),
    ("Lungs  <mask>  clear.", "Lungs are clear."),
    ("Heart size\t<mask>\nnormal.", "Heart size is normal."),
    ("x <pad> y <unk> z", "x y z"),
    ("Small [MASK] effusion.", "Small left effusion."),
    ("[CLS] No acute process. [SEP]", "No acute process."),
    ("left[SEP]right", "left right"),
    ("Small [mask] effusion and [Mask] edema.", "Small effusion and edema."),
    ("<MASK> opacity.", "Basal opacity."),
    ("<mask>", "<mask>"),
]


def _upstream_stage() -> None:
    import bert_score
    import f1chexbert.f1chexbert as upstream_chexbert
    import pandas as pd
    import torch
    import transformers
    from bert_score import BERTScorer
    from bert_score.utils import sent_encode
    from transformers import BertTokenizer

    torch.set_num_threads(1)
    texts = list(dict.fromkeys(t for pair in PAIRS for t in pair))
    baselines = Path(bert_score.__file__).parent / "rescale_baseline" / "en"
    out = {
        "upstream": {"transformers": transformers.__version__, "bert-score": "0.3.13", "f1chexbert": "0.0.2"},
        "texts": texts,
        "pairs": [list(p) for p in PAIRS],
        "bertscore": {},
    }
    for name in ("distilroberta-base", "distilbert-base-uncased"):
        scorer = BERTScorer(
            model_type=str(clinical.BERTSCORE_DIR / name),
            num_layers=clinical.NUM_LAYERS,
            idf=False,
            lang="en",
            device="cpu",
            nthreads=0,
            rescale_with_baseline=True,
            baseline_path=str(baselines / f"{name}.tsv"),
        )
        scores = {"P": [], "R": [], "F": []}
        for hyp, ref in PAIRS:
            for key, value in zip("PRF", scorer.score([hyp], [ref])):
                scores[key].append(float(value[0]))
        out["bertscore"][name] = {
            "tokenizer": type(scorer._tokenizer).__name__,
            "input_ids": [sent_encode(scorer._tokenizer, t) for t in texts],
            "rescaled": scores,
        }
        print(f"bertscore {name}: F {[round(f, 4) for f in scores['F']]}")
    tokenizer = BertTokenizer.from_pretrained(str(clinical.CHEXBERT_DIR))
    out["chexbert"] = {"input_ids": [upstream_chexbert.tokenize(pd.Series([t]), tokenizer)[0] for t in texts]}
    GOLDENS.write_text(json.dumps(out, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--venv", type=Path, default=clinical.DEFAULT_VENV, help="Throwaway venv with the upstream packages."
    )
    parser.add_argument("--stage", choices=["all", "upstream"], default="all", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stage == "upstream":
        _upstream_stage()
        return
    python = clinical.ensure_venv(args.venv)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    subprocess.run([str(python), __file__, "--stage", "upstream"], check=True, env=env)
    print(f"wrote {GOLDENS}")


if __name__ == "__main__":
    main()
