from pathlib import Path

import pytest
from trl import ModelConfig, SFTConfig

from radvlm_grpo.training.configs import SFTScriptArguments, parse_recipe, with_positional_config

DEMO = str(Path(__file__).resolve().parents[1] / "recipes/demo/sft.yaml")
TYPES = (SFTScriptArguments, SFTConfig, ModelConfig)


def test_positional_yaml_becomes_config():
    assert with_positional_config(["r.yaml", "--lr", "1"]) == ["--config", "r.yaml", "--lr", "1"]
    assert with_positional_config(["--config", "r.yml"]) == ["--config", "r.yml"]
    assert with_positional_config(["--output_dir", "x"]) == ["--output_dir", "x"]


def test_positional_and_flag_forms_agree_and_cli_overrides_win():
    a = parse_recipe(TYPES, [DEMO, "--learning_rate", "0.5"])
    b = parse_recipe(TYPES, ["--config", DEMO, "--learning_rate", "0.5"])
    assert a[1].learning_rate == b[1].learning_rate == 0.5
    assert a[3].overrides == ["--learning_rate", "0.5"] == b[3].overrides
    assert a[3].path == DEMO


def test_missing_recipe_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="does not exist"):
        parse_recipe(TYPES, ["recipes/nope.yaml"])


def test_script_arguments_validate():
    with pytest.raises(ValueError, match="Unknown task"):
        SFTScriptArguments(dataset_name="x", tasks=["report"])
    with pytest.raises(ValueError, match="larger than"):
        SFTScriptArguments(dataset_name="x", image_min_pixels=10, image_max_pixels=5)
    args = SFTScriptArguments(dataset_name="x", tasks=["report_generation"], image_max_pixels=451584)
    assert args.tasks == ["report_generation"]


def test_broken_recipes_are_user_errors(tmp_path):
    from radvlm_grpo.cli import UserError

    broken = tmp_path / "sft_broken.yaml"
    broken.write_text("learning_rate: [1e-5\n")
    with pytest.raises(UserError, match="is not valid YAML"):
        parse_recipe(TYPES, [str(broken)])
    broken.write_text("- a list, not settings\n")
    with pytest.raises(UserError, match="must be a YAML mapping"):
        parse_recipe(TYPES, [str(broken)])
    with pytest.raises(UserError, match="--config needs a recipe path"):
        parse_recipe(TYPES, ["--config"])
    with pytest.raises(UserError, match="No recipe given"):
        parse_recipe(TYPES, [], require_recipe=True)
