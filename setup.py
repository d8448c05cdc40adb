"""Packaging for radvlm-grpo.

Fast-moving dependencies are pinned exactly (as open-r1 does): TRL's GRPO/SFT internals, transformers' Qwen3-VL code
and the torch/torchvision pair change behaviour between minor releases. torch and torchvision must be pinned as a
pair: the Qwen3-VL processor needs a working torchvision video processor, and mismatched builds fail at import.
trackio (0.x, a new API every few weeks) is pinned exactly too; TensorBoard's logging API has been stable for years.
"""

import re
import shutil
from pathlib import Path

from setuptools import find_packages, setup

# Remove a stale egg-info so that `pip install -e .` picks up changed requirements.
stale_egg_info = Path(__file__).parent / "src" / "radvlm_grpo.egg-info"
if stale_egg_info.exists():
    shutil.rmtree(stale_egg_info)

_deps = [
    "accelerate==1.15.0",
    "datasets==5.2.0",
    "deepspeed==0.19.8",
    "evaluate==0.4.6",
    "gradio==6.31.0",
    "huggingface-hub==2.4.0",
    "hypothesis>=6.100",
    "import-linter==2.17",
    "jinja2>=3.1",
    "matplotlib>=3.8",
    "nltk>=3.9",
    "numpy>=2.0",
    "peft==0.21.2",
    "pillow>=10.0",
    "pycocotools>=2.0.8",
    "pytest>=8.0",
    "pytest-timeout>=2.3",
    "pyyaml>=6.0",
    "qwen-vl-utils==0.0.14",
    "rouge-score>=0.1.2",
    "ruff==0.14.10",
    "sacrebleu>=2.4",
    "scipy>=1.13",
    "selenium==4.51.0",
    "tensorboard>=2.18",
    "tokenizers>=0.22",
    "torch==2.14.1",
    "torchvision==0.29.1",
    "tqdm>=4.66",
    "trackio==0.43.0",
    "transformers==5.23.0",
    "trl==1.16.0",
    "vllm>=0.22.0,<=0.31.0",
]

# {"trl": "trl==1.16.0", ...}: look dependencies up by name so each pin is written once.
deps = {b: a for a, b in (re.findall(r"^(([^!=<>~ ]+)(?:[!=<>~ ].*)?$)", x)[0] for x in _deps)}


def deps_list(*pkgs: str) -> list[str]:
    return [deps[pkg] for pkg in pkgs]


install_requires = deps_list(
    "accelerate",
    "datasets",
    "evaluate",
    "huggingface-hub",
    "jinja2",
    "matplotlib",
    "nltk",
    "numpy",
    "peft",
    "pillow",
    "pyyaml",
    "qwen-vl-utils",
    "rouge-score",
    "scipy",
    "tokenizers",
    "torch",
    "torchvision",
    "tqdm",
    "transformers",
    "trl",
)

extras = {
    # deepspeed: tests/test_distributed.py runs SFT and GRPO under ZeRO-3 on 2 CPU processes (installed with
    # DS_BUILD_OPS=0, no op is compiled at install).
    "tests": deps_list("deepspeed", "hypothesis", "pycocotools", "pytest", "pytest-timeout", "sacrebleu"),
    # import-linter checks the package's layers (pyproject.toml [tool.importlinter]); `make quality` runs it.
    "quality": deps_list("ruff", "import-linter"),
    "deepspeed": deps_list("deepspeed"),
    "vllm": deps_list("vllm"),
    # Training curves: `report_to: [tensorboard]` and/or `[trackio]` (names transformers' `report_to` accepts).
    "tracking": deps_list("tensorboard", "trackio"),
}
# The web app (app/app.py, a Space); its browser test drives Debian's chromium with selenium (4.51: 4.52 needs a
# certifi release newer than the package index this project installs from).
extras["app"] = deps_list("gradio")
extras["tests"] += deps_list("selenium")
extras["dev"] = extras["tests"] + extras["quality"] + extras["app"]

setup(
    name="radvlm-grpo",
    version="0.1.0.dev0",
    description="Hub-native recipes to train chest X-ray vision-language models with SFT and GRPO (RadVLM-GRPO).",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    package_dir={"": "src"},
    packages=find_packages("src"),
    package_data={
        "radvlm_grpo": [
            "templates/*",
            "scorers/bertscore_baselines/*/*.tsv",
            "scorers/bertscore_baselines/LICENSE",
            "scorers/bertscore_baselines/README.md",
        ]
    },
    python_requires=">=3.11",
    install_requires=install_requires,
    extras_require=extras,
)
