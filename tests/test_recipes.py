"""Every recipe parses with the project's own parser, so a TRL field rename fails here and not on a GPU node."""

from pathlib import Path

import pytest
import yaml
from trl import ModelConfig, SFTConfig

from radvlm_grpo.configs import SFTScriptArguments, parse_recipe

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
TRAINING_RECIPES = sorted(p for p in RECIPES.rglob("*.yaml") if "accelerate_configs" not in p.parts)


def parser_types(recipe: Path) -> tuple:
    """Which script reads a recipe, by its file name (sft*, cold_start*)."""
    if recipe.stem.startswith(("sft", "cold_start")):
        return (SFTScriptArguments, SFTConfig, ModelConfig)
    raise AssertionError(f"{recipe} matches no script: name it sft*/cold_start*/grpo* or teach this test its script")


def test_recipes_exist():
    names = {str(p.relative_to(RECIPES)) for p in TRAINING_RECIPES}
    assert {"radvlm/sft.yaml", "radvlm/sft_lora.yaml", "demo/sft.yaml"} <= names


@pytest.mark.parametrize("recipe", TRAINING_RECIPES, ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_parses(recipe):
    # --use_cpu lets bf16 recipes build their TrainingArguments on a machine without a GPU.
    script_args, training_args, model_args, parsed = parse_recipe(parser_types(recipe), [str(recipe), "--use_cpu"])
    assert model_args.model_name_or_path
    assert script_args.dataset_name
    assert training_args.output_dir and training_args.output_dir.startswith("data/")
    assert training_args.max_length is None, "truncating a VLM sample can cut into its image tokens"
    assert parsed.text == recipe.read_text()
    first_line = recipe.read_text().splitlines()[0]
    assert first_line.startswith("#"), "each recipe opens with a comment saying what it is and the hardware"


def test_unknown_key_fails_before_training(tmp_path):
    bad = tmp_path / "sft_bad.yaml"
    bad.write_text((RECIPES / "demo/sft.yaml").read_text() + "max_seq_length: 512\n")
    with pytest.raises(ValueError, match="max_seq_length"):
        parse_recipe(parser_types(bad), [str(bad)])


@pytest.mark.parametrize("name", ["ddp", "zero2", "zero3", "fsdp"])
def test_accelerate_configs(name):
    config = yaml.safe_load((RECIPES / "accelerate_configs" / f"{name}.yaml").read_text())
    expected = {"ddp": "MULTI_GPU", "zero2": "DEEPSPEED", "zero3": "DEEPSPEED", "fsdp": "FSDP"}[name]
    assert config["distributed_type"] == expected
    assert config["mixed_precision"] == "bf16"
    if expected == "DEEPSPEED":
        assert config["deepspeed_config"]["zero_stage"] == int(name[-1])
