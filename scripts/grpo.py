"""GRPO of a chest X-ray VLM with clinically grounded rewards (RadVLM-GRPO stage 3).

Usage:
    # the tiny CPU demo (grounding with soft-F1)
    python scripts/grpo.py recipes/demo/grpo_grounding.yaml
    # report generation from RadVLM with the RadCliQ reward, one node of 8 GPUs, vLLM colocated
    accelerate launch --config_file recipes/accelerate_configs/zero3.yaml scripts/grpo.py recipes/radvlm/grpo.yaml
    # any field can be overridden: --reward_funcs gleu --max_steps 100
"""

import logging
import sys
from pathlib import Path

import datasets
import transformers
from transformers import set_seed
from transformers.trainer_utils import get_last_checkpoint
from trl import GRPOConfig, GRPOTrainer, ModelConfig, get_peft_config

from radvlm_grpo.cards import CardInfo, write_model_card
from radvlm_grpo.configs import GRPOScriptArguments, parse_recipe
from radvlm_grpo.data.conversation import edit_prompts
from radvlm_grpo.data.loading import load_recipe_dataset, select_tasks
from radvlm_grpo.data.schema import check_columns
from radvlm_grpo.hub import push_folder
from radvlm_grpo.model_utils import check_model_source, get_model_init_kwargs, get_processor
from radvlm_grpo.rewards import get_reward_funcs

logger = logging.getLogger(__name__)


def main(script_args: GRPOScriptArguments, training_args: GRPOConfig, model_args: ModelConfig, recipe) -> None:
    set_seed(training_args.seed)
    if training_args.push_to_hub and training_args.hub_private_repo is None:
        training_args.hub_private_repo = True  # credentialed training data: private unless the recipe says otherwise

    ###############
    # Setup logging
    ###############
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    log_level = training_args.get_process_log_level()
    logger.setLevel(logging.INFO if training_args.process_index == 0 else log_level)
    datasets.utils.logging.set_verbosity(log_level)
    transformers.utils.logging.set_verbosity(log_level)
    logger.info(f"Model parameters {model_args}")
    logger.info(f"Script parameters {script_args}")

    #####################################
    # Resume from the last checkpoint
    #####################################
    output_dir = Path(training_args.output_dir)
    last_checkpoint = get_last_checkpoint(output_dir) if output_dir.is_dir() else None
    resume_from = training_args.resume_from_checkpoint or last_checkpoint
    if resume_from:
        logger.info(f"Resuming training from {resume_from}")

    #####################
    # Rewards and data
    #####################
    # Rewards first: a misspelt reward name fails before any data or model is loaded.
    reward_funcs = get_reward_funcs(
        script_args.reward_funcs,
        box_scale=script_args.box_scale,
        thinking=script_args.thinking,
        soft_f1_variant=script_args.soft_f1_variant,
    )
    dataset = load_recipe_dataset(script_args.dataset_name, script_args.dataset_config)
    train_split, test_split = script_args.dataset_train_split, script_args.dataset_test_split
    check_columns(dataset[train_split].column_names, "grpo", source=f"{script_args.dataset_name}[{train_split}]")
    dataset = select_tasks(dataset, script_args.tasks)
    train_dataset = dataset[train_split]
    if script_args.max_train_samples:
        train_dataset = train_dataset.select(range(min(script_args.max_train_samples, len(train_dataset))))
    eval_dataset = None
    if training_args.eval_strategy != "no":
        eval_dataset = dataset[test_split]
        if script_args.max_eval_samples:
            eval_dataset = eval_dataset.select(range(min(script_args.max_eval_samples, len(eval_dataset))))
    prompt_edits = dict(
        think_suffix=script_args.think_suffix,
        report_prompt=script_args.report_prompt,
        system_prompt=script_args.system_prompt,
    )
    train_dataset = edit_prompts(train_dataset, **prompt_edits)
    if eval_dataset is not None:
        eval_dataset = edit_prompts(eval_dataset, **prompt_edits)

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
        history = trainer.state.log_history
        last_reward = next((log["reward"] for log in reversed(history) if "reward" in log), None)
        first_reward = next((log["reward"] for log in history if "reward" in log), None)
        card_metrics = {"first_logged_reward": first_reward, "final_logged_reward": last_reward}
        write_model_card(
            training_args.output_dir,
            CardInfo(
                model_id=training_args.hub_model_id or training_args.output_dir,
                stage="grpo",
                base_model=model_args.model_name_or_path,
                datasets=[script_args.dataset_name],
                metrics={k: v for k, v in card_metrics.items() if v is not None},
                recipe_path=recipe.path,
                recipe_text=recipe.text,
                overrides=recipe.overrides,
                tags=list(script_args.reward_funcs),
                thinking=script_args.thinking,
                is_demo="demo" in (recipe.path or ""),
                max_new_tokens=training_args.max_completion_length,
            ),
        )
        logger.info(f"Model, processor and card saved to {training_args.output_dir}")

    if training_args.push_to_hub and trainer.accelerator.is_main_process:
        url = push_folder(
            training_args.output_dir,
            training_args.hub_model_id,
            private=training_args.hub_private_repo,
            revision=training_args.hub_revision,
        )
        logger.info(f"Pushed to {url}")


if __name__ == "__main__":
    *parsed, recipe = parse_recipe((GRPOScriptArguments, GRPOConfig, ModelConfig))
    main(*parsed, recipe)
