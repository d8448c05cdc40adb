"""The package's layers and its freedom from import circles (pyproject.toml ``[tool.importlinter]``).

``make quality`` runs ``lint-imports`` on the tree; these tests run the same contracts and show that they fail on a
planted violation: an import from a lower layer up to a higher one, and an import circle inside a package.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (make install)")


def lint_imports(src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the repository's contracts on the package found in ``src``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(REPO_ROOT / "pyproject.toml")],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": str(src), "PATH": str(LINT_IMPORTS.parent)},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def src_copy(tmp_path):
    shutil.copytree(
        REPO_ROOT / "src" / "radvlm_grpo", tmp_path / "radvlm_grpo", ignore=shutil.ignore_patterns("*.pyc")
    )
    return tmp_path


def plant(src: Path, module: str, line: str) -> None:
    path = src / "radvlm_grpo" / module
    path.write_text(path.read_text() + f"\n{line}\n")


def test_the_package_keeps_its_layers_and_has_no_circles():
    result = lint_imports(REPO_ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_the_copy_used_below_keeps_the_contracts(src_copy):
    """The planted tests below fail because of the plant, not because the copy is read differently."""
    assert lint_imports(src_copy).returncode == 0


@pytest.mark.parametrize(
    "module, line, message",
    [
        # The vocabulary (bottom) reaching up to evaluation (top).
        ("vocab/schema.py", "from radvlm_grpo.evaluation import card  # noqa", "radvlm_grpo.vocab is not allowed"),
        # A metric importing a reward: model-free maths must not depend on TRL's reward callables.
        ("metrics/soft_f1.py", "import radvlm_grpo.rewards  # noqa", "radvlm_grpo.metrics is not allowed"),
        # Publishing reaching up into training, even inside a function.
        (
            "publishing/hub.py",
            "def _late():\n    from radvlm_grpo.training import configs  # noqa",
            "radvlm_grpo.publishing is not allowed",
        ),
        # Two packages of one layer are independent: rewards must not import models.
        ("rewards/base.py", "from radvlm_grpo.models import loading  # noqa", "radvlm_grpo.rewards is not allowed"),
    ],
)
def test_an_upward_import_breaks_the_layers_contract(src_copy, module, line, message):
    plant(src_copy, module, line)
    result = lint_imports(src_copy)
    assert result.returncode != 0
    assert "Layers:" in result.stdout and "BROKEN" in result.stdout
    assert message in result.stdout


def test_an_import_circle_inside_a_package_breaks_the_acyclic_contract(src_copy):
    # public.py holds what the converters share; importing the driver back from it closes a circle.
    plant(src_copy, "data/public.py", "def _late():\n    from radvlm_grpo.data import prepare_public  # noqa")
    result = lint_imports(src_copy)
    assert result.returncode != 0
    assert "No cycles are allowed in radvlm_grpo.data" in result.stdout
