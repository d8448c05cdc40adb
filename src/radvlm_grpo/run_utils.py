"""Plumbing every training script shares: logging, resuming, the recipe's train/eval splits, the final card."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import datasets
import transformers
from datasets import Dataset
from transformers import TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from radvlm_grpo.configs import ScriptArguments
from radvlm_grpo.data.loading import load_recipe_dataset, select_tasks
from radvlm_grpo.data.schema import check_columns


def setup_logging(logger: logging.Logger, training_args: TrainingArguments, *arg_objects) -> None:
    """open-r1's logging: stdout, INFO on the main process, the trainer's level elsewhere; log the run's arguments."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(logging.INFO if training_args.process_index == 0 else log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    for arguments in arg_objects:
        logger.info(f"{type(arguments).__name__}: {arguments}")


def last_complete_checkpoint(output_dir: str | Path, logger: logging.Logger | None = None) -> str | None:
    """The newest ``checkpoint-N`` whose save finished (its ``trainer_state.json`` is written last).

    A run killed while saving leaves a newer, incomplete folder; ``get_last_checkpoint`` would pick it and the resumed
    run would crash, so incomplete folders are skipped (and named in the log).
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    candidates = [p for p in output_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*") if p.name.split("-")[-1].isdigit()]
    for checkpoint in sorted(candidates, key=lambda p: int(p.name.split("-")[-1]), reverse=True):
        if (checkpoint / TRAINER_STATE_NAME).is_file():
            return str(checkpoint)
        if logger:
            logger.warning(f"Skipping {checkpoint}: its save did not finish (no {TRAINER_STATE_NAME}).")
    return None


def checkpoint_to_resume(training_args: TrainingArguments, logger: logging.Logger) -> str | None:
    """The recipe's ``resume_from_checkpoint`` or else the last complete checkpoint in ``output_dir``."""
    resume_from = training_args.resume_from_checkpoint or last_complete_checkpoint(training_args.output_dir, logger)
    if resume_from:
        logger.info(f"Resuming training from {resume_from}")
    return resume_from


def private_by_default(training_args: TrainingArguments) -> None:
    """Pushes are private unless the recipe says otherwise: the training data are credentialed."""
    if training_args.push_to_hub and training_args.hub_private_repo is None:
        training_args.hub_private_repo = True


def _head(dataset: Dataset, n: int | None) -> Dataset:
    return dataset.select(range(min(n, len(dataset)))) if n else dataset


def load_splits(
    script_args: ScriptArguments, training_args: TrainingArguments, kind: str
) -> tuple[Dataset, Dataset | None]:
    """The recipe's training split (and evaluation split when the trainer evaluates), checked against the schema."""
    dataset = load_recipe_dataset(script_args.dataset_name, script_args.dataset_config)
    train_split, test_split = script_args.dataset_train_split, script_args.dataset_test_split
    check_columns(dataset[train_split].column_names, kind, source=f"{script_args.dataset_name}[{train_split}]")
    dataset = select_tasks(dataset, script_args.tasks)
    train_dataset = _head(dataset[train_split], script_args.max_train_samples)
    eval_dataset = None
    if training_args.eval_strategy != "no":
        eval_dataset = _head(dataset[test_split], script_args.max_eval_samples)
    return train_dataset, eval_dataset


def last_logged(trainer, key: str, first: bool = False) -> float | None:
    """The last (or first) value of ``key`` in the trainer's log history."""
    history = trainer.state.log_history if first else reversed(trainer.state.log_history)
    return next((log[key] for log in history if key in log), None)
