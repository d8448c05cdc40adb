"""The command lines a new user meets: every entry point's --help, and user errors as one line naming the fix."""

import json
import os
import re
import runpy
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from radvlm_grpo import cli
from radvlm_grpo.cli import (
    UserError,
    check_hub_push,
    check_report_to,
    check_writable_dir,
    make_parser,
    run_cli,
    user_error,
)
from radvlm_grpo.training.configs import SFTScriptArguments

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "src" / "radvlm_grpo"


def _has_main(path: Path) -> bool:
    return re.search(r"^if __name__ == .__main__.:", path.read_text(), re.M) is not None


SCRIPTS = sorted(p for p in [*REPO_ROOT.glob("scripts/*.py"), *REPO_ROOT.glob("scripts/goldens/*.py")] if _has_main(p))
MODULES = sorted(
    ".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts) for p in PACKAGE.rglob("*.py") if _has_main(p)
)


def _first_docstring_line(source: str) -> str:
    docstring = re.search(r'"""(.+?)\n', source).group(1)
    return docstring.strip()


def _description(help_text: str) -> str:
    """The paragraphs between the usage and the first list of arguments: what the entry point does."""
    after_usage = help_text.split("\n\n", 1)[1] if "\n\n" in help_text else ""
    return re.split(r"^(?:positional arguments|options|optional arguments):", after_usage, maxsplit=1, flags=re.M)[0]


def test_the_entry_points_are_found():
    names = {p.name for p in SCRIPTS}
    assert {"sft.py", "grpo.py", "evaluate.py", "prepare_data.py", "prepare_public_data.py"} <= names
    assert {"radvlm_grpo.models.tiny", "radvlm_grpo.data.synthetic", "radvlm_grpo.evaluation.install_modules"} <= set(
        MODULES
    )


@pytest.mark.filterwarnings("ignore:.*found in sys.modules after import of package")
@pytest.mark.parametrize(
    "entry",
    [*(str(p.relative_to(REPO_ROOT)) for p in SCRIPTS), *(f"-m {m}" for m in MODULES)],
)
def test_help_says_what_the_entry_point_does(monkeypatch, capsys, entry):
    if entry.startswith("-m "):
        module = entry[3:]
        source = (PACKAGE.parent / (module.replace(".", "/") + ".py")).read_text()
        monkeypatch.setattr(sys, "argv", [module, "--help"])
        run = lambda: runpy.run_module(module, run_name="__main__", alter_sys=True)  # noqa: E731
    else:
        source = (REPO_ROOT / entry).read_text()
        monkeypatch.setattr(sys, "argv", [entry, "--help"])
        run = lambda: runpy.run_path(str(REPO_ROOT / entry), run_name="__main__")  # noqa: E731
    with pytest.raises(SystemExit) as exit_info:
        run()
    help_text = capsys.readouterr().out
    assert exit_info.value.code in (0, None), help_text
    assert "usage:" in help_text
    assert len(_description(help_text).split()) >= 5, "--help says what the entry point does"
    flat = " ".join(help_text.split())
    if entry in ("scripts/sft.py", "scripts/grpo.py", "scripts/evaluate.py", "scripts/prepare_data.py"):
        assert _first_docstring_line(source) in flat
    if entry in ("scripts/sft.py", "scripts/grpo.py"):
        assert f"accelerate launch [--config_file recipes/accelerate_configs/zero3.yaml] {entry} RECIPE.yaml" in flat
        assert "RADVLM_DEBUG=1" in flat


def test_a_percent_in_a_help_string_does_not_crash_help(capsys):
    @dataclass
    class Arguments:
        n_bootstrap: int = field(default=2000, metadata={"help": "Resamples for the 95% intervals (50%% is fine)."})

    parser = make_parser([Arguments], description="What it does.")
    with pytest.raises(SystemExit):
        parser.parse_args(["--help"])
    assert "95% intervals (50% is fine). (default: 2000)" in " ".join(capsys.readouterr().out.split())


# ---------------------------------------------------------------------------------------------------------------------
# User errors
# ---------------------------------------------------------------------------------------------------------------------


def test_which_errors_are_the_users():
    from datasets.exceptions import DatasetGenerationError

    from radvlm_grpo.publishing.hub import CredentialedDataError

    with pytest.raises(ValueError) as ours:  # a check in the project's own code
        SFTScriptArguments(dataset_name="x", tasks=["report"])
    assert user_error(ours.value) is ours.value
    with pytest.raises(ValueError) as library:  # raised inside a library, not by a check: a probable bug
        json.loads("{")
    assert user_error(library.value) is None
    with pytest.raises(TypeError) as bug:
        SFTScriptArguments(dataset_name="x", no_such_field=1)
    assert user_error(bug.value) is None
    missing = FileNotFoundError("no such file: data/x")
    assert user_error(missing) is missing
    refused = CredentialedDataError("refusing a public push")
    assert user_error(refused) is refused
    wrapped = DatasetGenerationError("An error occurred while generating the dataset")
    wrapped.__cause__ = missing
    assert user_error(wrapped) is missing


@pytest.fixture
def as_the_program(monkeypatch):
    """Run entry points as `python script.py` would: nothing above them catches what they raise."""
    monkeypatch.setattr(cli, "_called_from_python", lambda: False)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)


def test_a_user_error_ends_with_one_line_and_status_2(as_the_program, monkeypatch, capsys):
    def fails():
        print("some progress")
        raise UserError("Recipe x.yaml has no model_name_or_path:\n  add one, e.g. Qwen/Qwen3-VL-8B-Instruct.")

    with pytest.raises(SystemExit) as exit_info:
        run_cli(fails)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "error: Recipe x.yaml has no model_name_or_path: add one, e.g. Qwen/Qwen3-VL-8B-Instruct."
    ]

    with pytest.raises(TypeError):  # a probable bug keeps its traceback
        run_cli(lambda: SFTScriptArguments(no_such_field=1))
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(UserError):  # debug mode: the traceback too
        run_cli(fails)


def test_grpo_without_a_recipe_asks_for_one(as_the_program, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["scripts/grpo.py"])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO_ROOT / "scripts/grpo.py"), run_name="__main__")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("usage: accelerate launch") and "RECIPE.yaml" in err[0]
    assert err[-1].startswith("error: No recipe given: pass a recipe YAML")
    assert "bf16" not in "\n".join(err)


def test_misspelt_recipe_key_fails_in_one_line_with_the_closest_field(as_the_program, monkeypatch, capsys, tmp_path):
    recipe = tmp_path / "sft_typo.yaml"
    recipe.write_text((REPO_ROOT / "recipes/demo/sft.yaml").read_text() + "lerning_rate: 1.0e-5\n")
    monkeypatch.setattr(sys, "argv", ["scripts/sft.py", str(recipe), "--output_dir", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_path(str(REPO_ROOT / "scripts/sft.py"), run_name="__main__")
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: Unknown key in recipe") and "'lerning_rate' (did you mean 'learning_rate'?)" in last
    assert "fail_with_unknown_args" not in last
    assert not (tmp_path / "out").exists()


def test_the_program_prints_one_line_and_the_traceback_only_in_debug_mode(tmp_path):
    """The real thing, in a process of its own: no traceback, the error line last, status 2; RADVLM_DEBUG=1 shows it."""
    command = [sys.executable, "scripts/prepare_data.py", "--jsn", "x.json", "--output_dir", str(tmp_path / "o")]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}
    env.pop(cli.DEBUG_ENV, None)
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: Unknown option --jsn (did you mean '--json'?); `--help` lists every option."
    )
    debug = subprocess.run(
        command, cwd=REPO_ROOT, env={**env, cli.DEBUG_ENV: "1"}, capture_output=True, text=True, timeout=300
    )
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "UserError" in debug.stderr


# ---------------------------------------------------------------------------------------------------------------------
# Checks before hours of work
# ---------------------------------------------------------------------------------------------------------------------


def test_output_folder_and_hub_push_checks(monkeypatch, tmp_path):
    check_writable_dir(tmp_path / "new" / "deeper")  # created later: fine
    (tmp_path / "a-file").write_text("")
    with pytest.raises(NotADirectoryError, match="a-file is a file, not a folder; choose another --output_dir"):
        check_writable_dir(tmp_path / "a-file" / "out")
    from huggingface_hub import constants

    with pytest.raises(UserError, match="set --hub_model_id"):
        check_hub_push(None, "--hub_model_id")
    with pytest.raises(UserError, match="not a Hub repo id"):
        check_hub_push("me/two words")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set"):
        check_hub_push("me/cxr")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(UserError, match="hf auth login"):
        check_hub_push("me/cxr")


def _load_script(name: str) -> dict:
    return runpy.run_path(str(REPO_ROOT / "scripts" / name))


def test_prepare_data_checks_the_push_before_converting(monkeypatch, tmp_path):
    from huggingface_hub import constants

    script = _load_script("prepare_data.py")

    def must_not_run(*args, **kwargs):
        raise AssertionError("converted before the push settings were checked")

    monkeypatch.setitem(script["main"].__globals__, "prepare_dataset", must_not_run)
    (tmp_path / "rows.json").write_text("[]")
    args = ["--json", str(tmp_path / "rows.json"), "--output_dir", str(tmp_path / "out"), "--push_to_hub", "me/cxr"]
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(UserError, match="no Hub token"):
        script["main"](args)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: "hf_token")
    from radvlm_grpo.publishing.hub import CredentialedDataError

    with pytest.raises(CredentialedDataError, match="--allow_public_credentialed"):
        script["main"]([*args, "--hub_public"])


def test_prepare_public_data_checks_the_push_before_downloading(monkeypatch, tmp_path):
    from huggingface_hub import constants

    script = _load_script("prepare_public_data.py")

    def must_not_run(*args, **kwargs):
        raise AssertionError("downloaded or converted before the push settings were checked")

    monkeypatch.setitem(script["main"].__globals__, "prepare_public_dataset", must_not_run)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set"):
        script["main"](["--dataset", "nih", "--output_dir", str(tmp_path / "nih"), "--push_to_hub", "me/nih"])


def test_a_tracker_that_is_not_installed_fails_before_the_model_loads(monkeypatch):
    import transformers.integrations

    monkeypatch.setattr(transformers.integrations, "get_available_reporting_integrations", lambda: ["tensorboard"])
    check_report_to("none")
    check_report_to(["tensorboard"])
    with pytest.raises(UserError, match=r"trackio, which is not installed: `pip install -e \"\.\[tracking\]\"`"):
        check_report_to(["tensorboard", "trackio"])
