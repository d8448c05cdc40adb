"""Plumbing every training script shares: logging, resuming, the recipe's train/eval splits, the run's card."""

from __future__ import annotations

import dataclasses
import logging
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import datasets
import transformers
from datasets import Dataset
from transformers import ProgressCallback, TrainingArguments
from transformers.trainer import TRAINER_STATE_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from radvlm_grpo.data.loading import load_recipe_dataset, mix_tasks, select_tasks
from radvlm_grpo.publishing.cards import CardInfo, render_model_card
from radvlm_grpo.training.configs import ScriptArguments
from radvlm_grpo.vocab.schema import check_columns


def setup_logging(logger: logging.Logger, training_args: TrainingArguments, *arg_objects) -> None:
    """open-r1's logging: stdout, INFO on the main process, the trainer's level elsewhere; log the run's arguments."""
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    silence_library_deprecations()
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
    train_part = dataset[train_split]
    if script_args.task_weights:
        train_part = mix_tasks(train_part, script_args.tasks, script_args.task_weights, seed=training_args.seed)
    train_dataset = _head(train_part, script_args.max_train_samples)
    eval_dataset = None
    if training_args.eval_strategy != "no":
        eval_dataset = _head(dataset[test_split], script_args.max_eval_samples)
    return train_dataset, eval_dataset


def load_validation_subset(script_args: ScriptArguments, n: int, seed: int = 0) -> Dataset:
    """A fixed held-out subset for validation during training: ``n`` rows of the evaluation split (the recipe's tasks),
    drawn with a fixed seed so that every validation, and a resumed run, scores the same rows."""
    dataset = load_recipe_dataset(script_args.dataset_name, script_args.dataset_config)
    split = script_args.dataset_test_split
    if split not in dataset:
        raise ValueError(
            f"Validation needs the evaluation split {split!r}, which {script_args.dataset_name} lacks (it has "
            f"{sorted(dataset)}): set dataset_test_split, or validation_steps: 0."
        )
    check_columns(dataset[split].column_names, "grpo", source=f"{script_args.dataset_name}[{split}]")
    part = select_tasks(dataset[split], script_args.tasks)
    return part.shuffle(seed=seed).select(range(min(n, len(part))))


def last_logged(trainer, key: str, first: bool = False) -> float | None:
    """The last (or first) value of ``key`` in the trainer's log history."""
    history = trainer.state.log_history if first else reversed(trainer.state.log_history)
    return next((log[key] for log in history if key in log), None)


# ---------------------------------------------------------------------------------------------------------------------
# Noise in the logs
# ---------------------------------------------------------------------------------------------------------------------


def silence_library_deprecations() -> None:
    """Hide deprecation warnings that libraries raise from their own calls, which no recipe setting can avoid.

    TRL 1.16 reads ``model.is_gradient_checkpointing`` (transformers 5: ``is_activation_checkpointing``) around every
    generation, and the warning comes back at each step because warning filters are reset in between.
    """
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


def _writes_to_terminal() -> bool:
    return sys.stderr.isatty()


class LogFileProgressCallback(ProgressCallback):
    """The trainer's progress bar without bars nested under it when the output is a log file, not a terminal.

    A bar opened while the training bar runs (checkpoint shards, an evaluation's batches, a ``datasets`` map) sits on
    a second line and moves the cursor back up with ``ESC[A``, which a terminal obeys and a log file keeps as
    garbage. In a log file those bars stay hidden while training runs; the logged metrics say the same.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._restore: list = []

    def on_train_begin(self, args, state, control, **kwargs):
        super().on_train_begin(args, state, control, **kwargs)
        if state.is_world_process_zero and not _writes_to_terminal():
            if transformers.utils.logging.is_progress_bar_enabled():
                transformers.utils.logging.disable_progress_bar()
                self._restore.append(transformers.utils.logging.enable_progress_bar)
            if datasets.is_progress_bar_enabled():
                datasets.disable_progress_bars()
                self._restore.append(datasets.enable_progress_bars)

    def on_prediction_step(self, args, state, control, **kwargs):
        if self.training_bar is None or _writes_to_terminal():
            super().on_prediction_step(args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        super().on_train_end(args, state, control, **kwargs)
        while self._restore:
            self._restore.pop()()


def use_log_file_progress(trainer) -> None:
    """Swap the trainer's progress bar for ``LogFileProgressCallback`` (when it shows one at all)."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(LogFileProgressCallback)


# ---------------------------------------------------------------------------------------------------------------------
# The card of a run in progress
# ---------------------------------------------------------------------------------------------------------------------


def progress_note(step: int, max_steps: int | None) -> str:
    """What a card written during a run says: the run had not finished when it was written."""
    where = f"at step {step}" + (f" of {max_steps}" if max_steps else "") if step else "when the run started"
    return (
        f"> **Training in progress, or stopped before it finished.** This card was written {where}. A finished run "
        "replaces it with the final card and the training results; until then the folder holds only checkpoints "
        "(`checkpoint-N/`), not a final model."
    )


def write_progress_card(output_dir: str | Path, info: CardInfo, step: int = 0, max_steps: int | None = None) -> Path:
    """The project's card for a run not yet finished: recipe, base model and data, and a note that it is unfinished."""
    card = render_model_card(info)
    lines = card.text.splitlines()
    title = next((i for i, line in enumerate(lines) if line.startswith("# ")), -1)
    lines[title + 1 : title + 1] = ["", progress_note(step, max_steps)]
    card.text = "\n".join(lines) + "\n"
    path = Path(output_dir) / "README.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return path


def use_project_card(trainer, info: CardInfo, metric_keys: Sequence[str] = ()) -> None:
    """Write the project's card into ``output_dir`` now and at every save, in place of TRL's placeholder.

    TRL's trainers write their own text-only card ("a fine-tuned version of None") into ``output_dir`` at every
    checkpoint and on a push, through ``create_model_card``; a killed run was left with it. This instance's
    ``create_model_card`` writes the project's card instead, marked as unfinished, with the last logged
    ``metric_keys``. The script writes the final card once training ends.
    """

    def create_model_card(*args, **kwargs) -> None:
        if not trainer.is_world_process_zero():
            return
        logged = {f"last_logged_{key}": last_logged(trainer, key) for key in metric_keys}
        metrics = {key: value for key, value in logged.items() if value is not None}
        max_steps = trainer.state.max_steps or trainer.args.max_steps
        write_progress_card(
            trainer.args.output_dir,
            dataclasses.replace(info, metrics=metrics),
            trainer.state.global_step,
            max_steps if max_steps and max_steps > 0 else None,
        )

    trainer.create_model_card = create_model_card
    create_model_card()
