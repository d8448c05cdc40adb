"""What the training scripts share: recipe configs (YAML + command line -> dataclasses) and run utilities (logging,
datasets, resume, the progress card)."""
