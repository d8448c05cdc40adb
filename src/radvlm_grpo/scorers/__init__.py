"""Clinical report scorers (RadGraph, CheXbert, BERTScore, RadCliQ) re-implemented on transformers 5.

The upstream packages (radgraph 0.1.18, f1chexbert 0.0.2, bert-score 0.3.13) break or drift on transformers 5 and score
one report at a time; these modules load the same official weights, run on padded batches of many reports on CPU or
GPU, and are checked against goldens that the upstream packages wrote on transformers 4.57.6
(``scripts/goldens/``, ``tests/fixtures/scorers/``).
"""
