"""The shared vocabulary, the bottom layer: task names and dataset schemas, prompt templates, and boxes as text."""
