"""GRPO of a chest X-ray VLM with clinically grounded rewards (RadVLM-GRPO stage 3).

Trains the recipe's model on the recipe's GRPO-schema dataset with the rewards it names, writes checkpoints, the
model, its processor and a model card to output_dir (the card marks a run that has not finished), and pushes them
with --push_to_hub. The recipe (one YAML of script, GRPOConfig and ModelConfig fields) comes first; every field can
be overridden after it. recipes/README.md lists the recipes.

Examples:
    # the tiny CPU demo (grounding with soft-F1)
    python scripts/grpo.py recipes/demo/grpo_grounding.yaml
    # report generation from RadVLM with the RadCliQ reward, one node of 8 GPUs, vLLM colocated
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml scripts/grpo.py recipes/radvlm/grpo.yaml
    # any field can be overridden: --reward_funcs gleu --max_steps 100
"""

import dataclasses
import logging

from transformers import set_seed
from trl import GRPOConfig, GRPOTrainer, ModelConfig, get_peft_config

from radvlm_grpo.cli import check_hub_push, check_report_to, check_writable_dir, run_cli
from radvlm_grpo.data.conversation import edit_prompts
from radvlm_grpo.models.loading import check_model_source, get_model_init_kwargs, get_processor
from radvlm_grpo.publishing.cards import CardInfo, write_model_card
from radvlm_grpo.publishing.hub import push_folder
from radvlm_grpo.rewards import get_reward_funcs
from radvlm_grpo.training.configs import GRPOScriptArguments, Recipe, parse_recipe
from radvlm_grpo.training.run_utils import (
    checkpoint_to_resume,
    last_logged,
    load_splits,
    load_validation_subset,
    private_by_default,
    setup_logging,
    use_log_file_progress,
    use_project_card,
)
from radvlm_grpo.training.validation import ValidationCallback

logger = logging.getLogger(__name__)

USAGE = (
    "accelerate launch [--config_file recipes/accelerate_configs/zero3.yaml] scripts/grpo.py RECIPE.yaml "
    "[--field value ...]\n       python scripts/grpo.py recipes/demo/grpo_grounding.yaml   (one process, e.g. on a CPU)"
)


def card_info(
    script_args: GRPOScriptArguments, training_args: GRPOConfig, model_args: ModelConfig, recipe
) -> CardInfo:
    """What the run's card says: written at the start, at every save (marked unfinished) and at the end."""
    return CardInfo(
        model_id=training_args.hub_model_id or training_args.output_dir,
        stage="grpo",
        base_model=model_args.model_name_or_path,
        datasets=[script_args.dataset_name],
        recipe_path=recipe.path,
        recipe_text=recipe.text,
        overrides=recipe.overrides,
        tags=list(script_args.reward_funcs),
        thinking=script_args.thinking,
        is_demo="demo" in (recipe.path or ""),
        max_new_tokens=training_args.max_completion_length,
    )


def main(script_args: GRPOScriptArguments, training_args: GRPOConfig, model_args: ModelConfig, recipe: Recipe) -> None:
    set_seed(training_args.seed)
    check_writable_dir(training_args.output_dir)
    check_report_to(training_args.report_to)
    if training_args.push_to_hub:
        check_hub_push(training_args.hub_model_id, "--hub_model_id")
    private_by_default(training_args)
    setup_logging(logger, training_args, script_args, model_args)
    resume_from = checkpoint_to_resume(training_args, logger)

    #####################
    # Rewards and data
    #####################
    # Rewards first: a misspelt reward name fails before any data or model is loaded.
    reward_funcs = get_reward_funcs(
        script_args.reward_funcs,
        box_scale=script_args.box_scale,
        thinking=script_args.thinking,
        soft_f1_variant=script_args.soft_f1_variant,
        radgraph_model=script_args.radgraph_model,
        scorer_device=script_args.scorer_device,
        scorer_weights_dir=script_args.scorer_weights_dir,
        scorer_batch_size=script_args.scorer_batch_size,
        scorer_cache_size=script_args.scorer_cache_size,
        report_max_chars=script_args.report_max_chars,
        finding_f1_empty=script_args.finding_f1_empty,
        scorer_dtype=script_args.scorer_dtype,
    )
    train_dataset, eval_dataset = load_splits(script_args, training_args, "grpo")
    prompt_edits = dict(
        think_suffix=script_args.think_suffix,
        report_prompt=script_args.report_prompt,
        system_prompt=script_args.system_prompt,
    )
    train_dataset = edit_prompts(train_dataset, **prompt_edits)
    if eval_dataset is not None:
        eval_dataset = edit_prompts(eval_dataset, **prompt_edits)
    validation_subset = None
    if script_args.validation_steps:
        subset = load_validation_subset(script_args, script_args.validation_samples)
        validation_subset = edit_prompts(subset, **prompt_edits)

    ######################
    # Model and processor
    ######################
    check_model_source(model_args.model_name_or_path)
    training_args.model_init_kwargs = get_model_init_kwargs(model_args) | dict(training_args.model_init_kwargs or {})
    processor = get_processor(
        model_args, script_args.image_min_pixels, script_args.image_max_pixels, padding_side="left"
    )

    trainer = GRPOTrainer(
        model=model_args.model_name_or_path,
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=processor,
        peft_config=get_peft_config(model_args),
    )
    if validation_subset is not None:
        ValidationCallback(
            validation_subset,
            reward_funcs,
            every=script_args.validation_steps,
            max_new_tokens=script_args.validation_max_new_tokens or training_args.max_completion_length,
            box_scale=script_args.box_scale,
            thinking=script_args.thinking,
        ).attach(trainer)
    use_log_file_progress(trainer)
    info = card_info(script_args, training_args, model_args, recipe)
    use_project_card(trainer, info, metric_keys=["reward"])

    ###############
    # Training loop
    ###############
    train_result = trainer.train(resume_from_checkpoint=resume_from)
    # A joint run's last step may hold no row of some reward's task: TRL then reports that reward's mean as None.
    metrics = {k: v for k, v in train_result.metrics.items() if v is not None}
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
        card_metrics = {
            "first_logged_reward": last_logged(trainer, "reward", first=True),
            "final_logged_reward": last_logged(trainer, "reward"),
        }
        # The last validation during training (validation_steps), each metric's latest value.
        card_metrics |= {
            k: v for log in trainer.state.log_history for k, v in log.items() if k.startswith("validation/")
        }
        recorded = {k: v for k, v in card_metrics.items() if v is not None}
        write_model_card(training_args.output_dir, dataclasses.replace(info, metrics=recorded))
        logger.info(f"Model, processor and card saved to {training_args.output_dir}")

    if training_args.push_to_hub and trainer.accelerator.is_main_process:
        url = push_folder(
            training_args.output_dir,
            training_args.hub_model_id,
            private=training_args.hub_private_repo,
            revision=training_args.hub_revision,
        )
        logger.info(f"Pushed to {url}")


def cli() -> None:
    types = (GRPOScriptArguments, GRPOConfig, ModelConfig)
    main(*parse_recipe(types, description=__doc__, usage=USAGE, require_recipe=True))


if __name__ == "__main__":
    run_cli(cli)
