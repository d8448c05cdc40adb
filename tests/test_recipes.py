"""Every recipe parses with the project's own parser, so a TRL field rename fails here and not on a GPU node."""

from pathlib import Path

import pytest
import yaml
from trl import GRPOConfig, ModelConfig, SFTConfig

from radvlm_grpo.cli import UserError
from radvlm_grpo.training.configs import GRPOScriptArguments, SFTScriptArguments, parse_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
GRPO_VARIANTS = ("grpo", "grpo_thinking", "grpo_grounding", "grpo_grounding_thinking")
TRAINING_RECIPES = sorted(p for p in RECIPES.rglob("*.yaml") if "accelerate_configs" not in p.parts)


def parser_types(recipe: Path) -> tuple:
    """Which script reads a recipe, by its file name (sft*, cold_start*, grpo*)."""
    if recipe.stem.startswith(("sft", "cold_start")):
        return (SFTScriptArguments, SFTConfig, ModelConfig)
    if recipe.stem.startswith("grpo"):
        return (GRPOScriptArguments, GRPOConfig, ModelConfig)
    raise AssertionError(f"{recipe} matches no script: name it sft*/cold_start*/grpo* or teach this test its script")


def test_recipes_exist():
    names = {str(p.relative_to(RECIPES)) for p in TRAINING_RECIPES}
    expected = {"radvlm/sft.yaml", "radvlm/sft_lora.yaml", "demo/sft.yaml", "demo/grpo_grounding.yaml"}
    expected |= {"demo/grpo_report.yaml", "ablations/grpo_bertscore.yaml", "ablations/grpo_radgraph.yaml"}
    expected |= {"ablations/grpo_gleu.yaml"}
    expected |= {"public/sft.yaml", "public/grpo.yaml", "public/grpo_grounding.yaml"}
    for family in ("radvlm", "qwen3vl"):
        expected |= {f"{family}/{name}.yaml" for name in GRPO_VARIANTS}
    assert expected <= names


@pytest.mark.parametrize("recipe", TRAINING_RECIPES, ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_parses(recipe):
    # --use_cpu lets bf16 recipes build their TrainingArguments on a machine without a GPU.
    script_args, training_args, model_args, parsed = parse_recipe(parser_types(recipe), [str(recipe), "--use_cpu"])
    assert model_args.model_name_or_path
    assert script_args.dataset_name
    assert training_args.output_dir and training_args.output_dir.startswith("data/")
    if isinstance(training_args, SFTConfig):
        assert training_args.max_length is None, "truncating a VLM sample can cut into its image tokens"
    assert parsed.text == recipe.read_text()
    first_line = recipe.read_text().splitlines()[0]
    assert first_line.startswith("#"), "each recipe opens with a comment saying what it is and the hardware"


def test_unknown_key_fails_before_training(tmp_path):
    bad = tmp_path / "sft_bad.yaml"
    bad.write_text((RECIPES / "demo/sft.yaml").read_text() + "max_seq_length: 512\nreward_func: [gleu]\n")
    with pytest.raises(UserError) as error:
        parse_recipe(parser_types(bad), [str(bad)])
    message = str(error.value)
    assert "'max_seq_length' (now called 'max_length')" in message
    assert "'reward_func'" in message and "fail_with_unknown_args" not in message
    grpo = tmp_path / "grpo_bad.yaml"
    grpo.write_text((RECIPES / "demo/grpo_report.yaml").read_text() + "reward_func: [gleu]\n")
    with pytest.raises(UserError, match=r"'reward_func' \(did you mean 'reward_funcs'\?\)"):
        parse_recipe(parser_types(grpo), [str(grpo)])
    with pytest.raises(UserError, match=r"--lerning_rate \(did you mean '--learning_rate'\?\)"):
        parse_recipe(parser_types(grpo), [str(RECIPES / "demo/grpo_report.yaml"), "--lerning_rate", "1"])


@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3", "fsdp"])
def test_accelerate_configs(name):
    config = yaml.safe_load((RECIPES / "accelerate_configs" / f"{name}.yaml").read_text())
    expected = {"ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}[name]
    assert config["distributed_type"] == expected
    assert config["mixed_precision"] == "bf16"
    if expected == "DEEPSPEED":
        assert config["deepspeed_config"]["zero_stage"] == int(name[-1])


@pytest.mark.parametrize("family", ["radvlm", "qwen3vl"])
@pytest.mark.parametrize("variant", GRPO_VARIANTS)
def test_grpo_recipes_map_the_paper(family, variant):
    """The paper's GRPO settings (method.md 1.4) as TRL fields, checked against the published values."""
    recipe = RECIPES / family / f"{variant}.yaml"
    script_args, args, model_args, _ = parse_recipe(parser_types(recipe), [str(recipe), "--use_cpu"])
    assert (args.learning_rate, args.lr_scheduler_type.value, args.beta) == (1e-6, "constant", 0.01)
    assert (args.epsilon, args.epsilon_high, args.loss_type, args.num_generations) == (0.2, 0.28, "dapo", 8)
    assert args.temperature == 1.0 and args.top_p == 1.0
    assert script_args.image_max_pixels == 451584
    # 512 prompts x 8 rollouts per generation, 128-prompt mini-batches, on the recipe's 8 GPUs.
    world = 8
    per_optimizer_step = args.per_device_train_batch_size * world * args.gradient_accumulation_steps
    per_generation = args.per_device_train_batch_size * world * args.steps_per_generation
    assert (per_optimizer_step, per_generation) == (128 * 8, 512 * 8)
    assert args.max_steps == 300 * per_generation // per_optimizer_step
    thinking = "thinking" in variant
    grounding = "grounding" in variant
    assert script_args.thinking is thinking
    assert script_args.think_suffix is (thinking and family == "radvlm")
    assert args.max_completion_length == (4096 if thinking or grounding else 1024)
    assert script_args.reward_funcs == (["soft_f1"] if grounding else ["radcliq"])
    if grounding:
        assert script_args.box_scale == (1000 if family == "qwen3vl" else 1)
    expected_model = {"radvlm": "data/RadVLM", "qwen3vl": "Qwen/Qwen3-VL-8B-"}[family]
    assert model_args.model_name_or_path.startswith(expected_model)
    assert args.use_vllm and args.vllm_mode == "colocate"


def test_recipes_use_the_current_activation_checkpointing_name():
    """transformers 5 renamed gradient_checkpointing to activation_checkpointing: the old key warned on every run."""
    import warnings

    for recipe in TRAINING_RECIPES:
        assert "gradient_checkpointing" not in yaml.safe_load(recipe.read_text()), recipe
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            parse_recipe(parser_types(recipe), [str(recipe), "--use_cpu"])
        assert not [w for w in caught if "checkpointing" in str(w.message)], recipe


def test_checkpointing_default_and_the_old_name(tmp_path):
    import warnings

    recipe = tmp_path / "sft_plain.yaml"
    text = (RECIPES / "demo/sft.yaml").read_text()
    recipe.write_text("\n".join(line for line in text.splitlines() if "checkpointing" not in line) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, args, _, _ = parse_recipe(parser_types(recipe), [str(recipe)])
    assert args.activation_checkpointing is True, "TRL's default (on) is kept"
    assert not [w for w in caught if "checkpointing" in str(w.message)], "no deprecation warning for a key not set"
    # The old name on the command line overrides the recipe's new one (transformers alone would ignore it).
    _, args, _, _ = parse_recipe(
        parser_types(recipe), [str(RECIPES / "demo/sft.yaml"), "--gradient_checkpointing", "true"]
    )
    assert args.activation_checkpointing is True
    both = tmp_path / "sft_both.yaml"
    both.write_text(text + "gradient_checkpointing: true\n")
    with pytest.raises(UserError, match="keep only activation_checkpointing"):
        parse_recipe(parser_types(both), [str(both)])


@pytest.mark.parametrize("recipe", sorted((RECIPES / "demo").glob("grpo*.yaml")), ids=lambda p: p.name)
def test_demo_completion_budget_fits_the_longest_synthetic_answer(recipe, tiny_model_dir):
    """A reference answer longer than max_completion_length can never be written in training: at 48 tokens the
    grounding recipe cut 88 of its 1,200 answers (two boxes take 54-56 tokens)."""
    from transformers import AutoTokenizer

    from radvlm_grpo.data.synthetic import SyntheticConfig, build_examples

    settings = yaml.safe_load(recipe.read_text())
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = SyntheticConfig(train_size=600, validation_size=0, test_size=0, varied_templates=False)  # as the demo
    answers = [row["answer"] for row in build_examples(config)["train"] if row["task"] in settings["tasks"]]
    longest = max(len(tokenizer(answer)["input_ids"]) + 1 for answer in answers)  # + the end-of-turn token
    assert settings["max_completion_length"] >= longest, f"{recipe.name}: the longest answer takes {longest} tokens"
