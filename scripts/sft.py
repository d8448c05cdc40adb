"""Supervised fine-tuning of a Qwen3-VL model on chest X-ray instructions (RadVLM stage 1, and the cold-start SFT).

Trains the recipe's model on the recipe's SFT-schema dataset (optionally mixed with a second one), writes
checkpoints, the model, its processor and a model card to output_dir (the card marks a run that has not finished),
and pushes them with --push_to_hub. The recipe (one YAML of script, SFTConfig and ModelConfig fields) comes first;
every field can be overridden after it. recipes/README.md lists the recipes.

Examples:
    # the tiny CPU demo
    python scripts/sft.py recipes/demo/sft.yaml
    # RadVLM on Qwen3-VL-8B-Instruct, one node of 8 GPUs
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml scripts/sft.py recipes/radvlm/sft.yaml
    # any field can be overridden: --learning_rate 2e-5 --output_dir data/my-run
"""

import dataclasses
import logging

from transformers import set_seed
from trl import ModelConfig, SFTConfig, SFTTrainer, get_peft_config

from radvlm_grpo.cli import check_hub_push, check_report_to, check_writable_dir, run_cli
from radvlm_grpo.data.loading import load_recipe_dataset, select_tasks
from radvlm_grpo.data.mixing import mix_datasets
from radvlm_grpo.models.loading import get_model, get_processor
from radvlm_grpo.publishing.cards import CardInfo, write_model_card
from radvlm_grpo.publishing.hub import push_folder
from radvlm_grpo.training.configs import Recipe, SFTScriptArguments, parse_recipe
from radvlm_grpo.training.run_utils import (
    checkpoint_to_resume,
    last_logged,
    load_splits,
    private_by_default,
    setup_logging,
    use_log_file_progress,
    use_project_card,
)
from radvlm_grpo.vocab.schema import check_columns

logger = logging.getLogger(__name__)

USAGE = (
    "accelerate launch [--config_file recipes/accelerate_configs/zero3.yaml] scripts/sft.py RECIPE.yaml "
    "[--field value ...]\n       python scripts/sft.py recipes/demo/sft.yaml   (one process, e.g. on a CPU)"
)


def card_info(script_args: SFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig, recipe) -> CardInfo:
    """What the run's card says: written at the start, at every save (marked unfinished) and at the end."""
    return CardInfo(
        model_id=training_args.hub_model_id or training_args.output_dir,
        stage=script_args.stage,
        base_model=model_args.model_name_or_path,
        datasets=[d for d in (script_args.dataset_name, script_args.mix_dataset_name) if d],
        recipe_path=recipe.path,
        recipe_text=recipe.text,
        overrides=recipe.overrides,
        thinking=script_args.stage == "cold_start",
        is_demo="demo" in (recipe.path or ""),
    )


def main(script_args: SFTScriptArguments, training_args: SFTConfig, model_args: ModelConfig, recipe: Recipe) -> None:
    set_seed(training_args.seed)
    check_writable_dir(training_args.output_dir)
    check_report_to(training_args.report_to)
    if training_args.push_to_hub:
        check_hub_push(training_args.hub_model_id, "--hub_model_id")
    private_by_default(training_args)
    setup_logging(logger, training_args, script_args, model_args)
    resume_from = checkpoint_to_resume(training_args, logger)

    ##########
    # Dataset
    ##########
    train_dataset, eval_dataset = load_splits(script_args, training_args, "sft")
    if script_args.mix_dataset_name:
        mix = load_recipe_dataset(script_args.mix_dataset_name, script_args.mix_dataset_config)
        split = script_args.dataset_train_split
        check_columns(mix[split].column_names, "sft", source=f"{script_args.mix_dataset_name}[{split}]")
        n_primary = len(train_dataset)
        mix = select_tasks(mix, script_args.tasks)[split]
        train_dataset = mix_datasets(train_dataset, mix, script_args.mix_ratio, seed=training_args.seed)
        logger.info(
            f"Mixed {n_primary} rows with {len(train_dataset) - n_primary} from {script_args.mix_dataset_name}"
        )

    ######################
    # Model and processor
    ######################
    processor = get_processor(model_args, script_args.image_min_pixels, script_args.image_max_pixels)
    model = get_model(model_args)

    trainer = SFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    use_log_file_progress(trainer)
    info = card_info(script_args, training_args, model_args, recipe)
    use_project_card(trainer, info, metric_keys=["loss"])

    ###############
    # Training loop
    ###############
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    metrics = train_result.metrics
    metrics["train_samples"] = len(train_dataset)
    metrics["world_size"] = trainer.accelerator.num_processes
    trainer.log_metrics("train", metrics)
    trainer.save_metrics("train", metrics)
    trainer.save_state()

    ##################################
    # Save model, processor and card
    ##################################
    trainer.save_model(training_args.output_dir)
    if trainer.accelerator.is_main_process:
        processor.save_pretrained(training_args.output_dir)
        final_loss = last_logged(trainer, "loss")
        card_metrics = {"train_loss": metrics.get("train_loss"), "final_logged_loss": final_loss}
        recorded = {k: v for k, v in card_metrics.items() if v is not None}
        write_model_card(training_args.output_dir, dataclasses.replace(info, metrics=recorded))
        logger.info(f"Model, processor and card saved to {training_args.output_dir}")

    if training_args.eval_strategy != "no":
        metrics = trainer.evaluate()
        metrics["eval_samples"] = len(eval_dataset)
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)

    if training_args.push_to_hub and trainer.accelerator.is_main_process:
        url = push_folder(
            training_args.output_dir,
            training_args.hub_model_id,
            private=training_args.hub_private_repo,
            revision=training_args.hub_revision,
        )
        logger.info(f"Pushed to {url}")


def cli() -> None:
    types = (SFTScriptArguments, SFTConfig, ModelConfig)
    main(*parse_recipe(types, description=__doc__, usage=USAGE, require_recipe=True))


if __name__ == "__main__":
    run_cli(cli)
