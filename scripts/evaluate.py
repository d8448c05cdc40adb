"""Evaluate a checkpoint on report generation and visual grounding, laid out like the paper's Tables 1 and 2.

Examples:
    # a Hub checkpoint on a local test set (vLLM on a GPU when installed, batched transformers otherwise)
    python scripts/evaluate.py --model_name_or_path me/RadVLM-GRPO --dataset_name data/radvlm_grpo --split test \
        --output_dir eval/radvlm-grpo
    # a thinking model, sampled as the authors did, with regeneration of answers that lack </think>
    python scripts/evaluate.py --model_name_or_path Qwen/Qwen3-VL-8B-Thinking --thinking --temperature 1.0 \
        --max_new_tokens 4096 --box_scale 1000 --dataset_name data/radvlm_grpo --output_dir eval/qwen3vl-thinking
    # with an out-of-distribution test set (IU X-ray for a MIMIC-trained model), reported apart
    python scripts/evaluate.py --model_name_or_path me/RadVLM-GRPO --dataset_name data/radvlm_grpo --split test \
        --ood_dataset_name data/public/openi --ood_split test --output_dir eval/radvlm-grpo
    # settings from a YAML file, any of them overridden on the command line
    python scripts/evaluate.py my_evaluation.yaml --max_samples 100

Writes predictions.jsonl (resumed after a crash), samples.jsonl, metrics.json, results.md, figures/ and
model_card.md to --output_dir (and ood/ for the out-of-distribution set); --push_to_hub merges the results into the
model's Hub card.
"""

import logging
import sys

import datasets
import transformers

from radvlm_grpo.cli import run_cli
from radvlm_grpo.evaluation.config import EvaluationArguments
from radvlm_grpo.evaluation.run import RESULTS_FILE, run_evaluation
from radvlm_grpo.models.generation import SamplingSettings
from radvlm_grpo.training.configs import parse_recipe

logger = logging.getLogger(__name__)

USAGE = (
    "python scripts/evaluate.py [SETTINGS.yaml] --model_name_or_path MODEL --dataset_name DATASET "
    "--output_dir DIR [options]"
)


def main(args: EvaluationArguments, sampling: SamplingSettings, recipe) -> None:
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
        level=logging.INFO,
    )
    datasets.utils.logging.set_verbosity_warning()
    transformers.utils.logging.set_verbosity_warning()
    logger.info(f"Evaluation arguments {args}")
    logger.info(f"Sampling {sampling}")
    run_evaluation(args, sampling, recipe)
    print((f"{args.output_dir}/{RESULTS_FILE}:\n") + open(f"{args.output_dir}/{RESULTS_FILE}").read())


def cli() -> None:
    main(*parse_recipe((EvaluationArguments, SamplingSettings), description=__doc__, usage=USAGE))


if __name__ == "__main__":
    run_cli(cli)
