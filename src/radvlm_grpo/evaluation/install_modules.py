"""Register the project's ``evaluate`` modules so that ``evaluate.load("soft_f1")`` works anywhere, offline.

``evaluate.load("<name>")`` looks for ``<name>/<name>.py`` under the working directory, then on the Hub, and then in
its modules cache at ``$HF_MODULES_CACHE/evaluate_modules/metrics/evaluate-metric--<name>/<64-char hash>/<name>.py``
(the newest by modification time). A pip install cannot run a post-install hook, so ``make install`` calls this
command, which copies every ``evaluate_metrics/<name>/<name>.py`` into that layout (metrics.md section 5). It is
idempotent: the hash is the script's SHA-256, an unchanged script is only touched (so it stays the newest), and older
copies that this command wrote are removed. Set ``HF_EVALUATE_OFFLINE=1`` so that ``evaluate`` skips the Hub lookup.

    python -m radvlm_grpo.evaluation.install_modules [--metrics-dir DIR] [--modules-cache DIR] [NAME ...]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
from pathlib import Path

from radvlm_grpo.cli import run_cli

DYNAMIC_MODULES = "evaluate_modules"  # evaluate.config.MODULE_NAME_FOR_DYNAMIC_MODULES
MARKER = "installed_by"
DEFAULT_METRICS_DIR = Path(__file__).resolve().parents[3] / "evaluate_metrics"


def default_modules_cache() -> Path:
    """``evaluate.config.HF_MODULES_CACHE``, computed the same way without importing ``evaluate`` (a 10 s import)."""
    if os.environ.get("HF_MODULES_CACHE"):
        return Path(os.environ["HF_MODULES_CACHE"]).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME", "~/.cache")
    hf_home = os.environ.get("HF_HOME", os.path.join(xdg_cache, "huggingface"))
    return Path(hf_home).expanduser() / "modules"


def find_modules(metrics_dir: Path) -> dict[str, Path]:
    """Every ``<name>/<name>.py`` under ``metrics_dir``, by name."""
    if not metrics_dir.is_dir():
        raise FileNotFoundError(
            f"No evaluate_metrics folder at {metrics_dir}; pass --metrics-dir (the folder is in the project checkout, "
            "so install the package in editable mode: pip install -e .)."
        )
    return {d.name: d / f"{d.name}.py" for d in sorted(metrics_dir.iterdir()) if (d / f"{d.name}.py").is_file()}


def _touch_init(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").touch(exist_ok=True)


def install_module(name: str, script: Path, modules_cache: Path) -> Path:
    """Copy one script into the cache as a canonical ``evaluate-metric`` module; return the installed file."""
    code = script.read_bytes()
    digest = hashlib.sha256(code).hexdigest()
    root = modules_cache / DYNAMIC_MODULES
    _touch_init(root)
    _touch_init(root / "metrics")
    module_dir = root / "metrics" / f"evaluate-metric--{name}"
    _touch_init(module_dir)
    target_dir = module_dir / digest
    _touch_init(target_dir)
    target = target_dir / f"{name}.py"
    if not target.is_file() or target.read_bytes() != code:
        target.write_bytes(code)
    target.touch()  # newest by mtime, so evaluate picks it among older hashes
    meta = {"original file path": str(script), "local file path": str(target), MARKER: __name__}
    (target_dir / f"{name}.json").write_text(json.dumps(meta), encoding="utf-8")
    for other in module_dir.iterdir():
        if other.is_dir() and other.name != digest and len(other.name) == 64:
            try:
                stale = json.loads((other / f"{name}.json").read_text(encoding="utf-8")).get(MARKER) == __name__
            except (OSError, ValueError):
                stale = False
            if stale:
                shutil.rmtree(other, ignore_errors=True)
    return target


def install_metrics(
    metrics_dir: Path | str | None = None, modules_cache: Path | str | None = None, names: list[str] | None = None
) -> dict[str, Path]:
    """Install every module of ``metrics_dir`` (or only ``names``) into ``modules_cache``; return name -> file."""
    modules = find_modules(Path(metrics_dir) if metrics_dir else DEFAULT_METRICS_DIR)
    if names:
        missing = sorted(set(names) - set(modules))
        if missing:
            raise ValueError(f"No module folder for {missing}; found {sorted(modules)}.")
        modules = {n: modules[n] for n in names}
    cache = Path(modules_cache) if modules_cache else default_modules_cache()
    return {name: install_module(name, script, cache) for name, script in modules.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="module names to install (default: all)")
    parser.add_argument("--metrics-dir", default=None, help=f"default: {DEFAULT_METRICS_DIR}")
    parser.add_argument("--modules-cache", default=None, help="default: $HF_MODULES_CACHE or $HF_HOME/modules")
    args = parser.parse_args(argv)
    for name, path in install_metrics(args.metrics_dir, args.modules_cache, args.names).items():
        print(f"installed {name}: {path}")


if __name__ == "__main__":
    run_cli(main)
