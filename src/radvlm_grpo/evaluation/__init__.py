"""Evaluation of a checkpoint: generation, the paper's metrics with bootstrap intervals, tables, figures, the
card section, comparison of runs, and the `evaluate` modules' installer."""
