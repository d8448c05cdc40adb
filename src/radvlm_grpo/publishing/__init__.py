"""Publishing to the Hub: model and dataset cards, pushes of checkpoints and datasets, and the licence terms of the
data sources. Training, data and evaluation use it; it uses none of them."""
