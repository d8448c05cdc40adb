"""One evaluation, end to end: generate, score, bootstrap, and write the JSON, the tables, the figures and the card.

Output folder (``--output_dir``):

- ``predictions.jsonl``: raw generations, appended per batch (resumable), with ``generation_settings.json``;
- ``samples.jsonl``: per row, the question, reference, scored answer and per-sample scores;
- ``metrics.json``: every metric with its bootstrap 95% interval, what was not computed and why, the settings;
- ``results.md``: Tables 1 and 2 laid out as in the paper with its rows, then every metric with its interval;
- ``figures/``: per-condition CheXbert F1, boxes on sample images, report lengths;
- ``model_card.md``: the model's card with the evaluation merged in (``--push_to_hub`` also updates the Hub card).
"""

from __future__ import annotations

import gc
import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from radvlm_grpo.boxes import as_boxes, parse_boxes
from radvlm_grpo.cards import CardInfo, EvaluationSummary, apply_evaluation, render_model_card
from radvlm_grpo.configs import Recipe
from radvlm_grpo.data.conversation import edit_prompts
from radvlm_grpo.data.loading import load_recipe_dataset, select_tasks
from radvlm_grpo.data.schema import GRPO_TASKS, REPORT_GENERATION, check_columns
from radvlm_grpo.evaluation import figures
from radvlm_grpo.evaluation.bootstrap import Interval, Statistic, bootstrap
from radvlm_grpo.evaluation.clinical import ClinicalPlan, clinical_statistics, plan_clinical_metrics
from radvlm_grpo.evaluation.config import EvaluationArguments
from radvlm_grpo.evaluation.grounding_metrics import (
    ALL_GROUNDING,
    benchmark_of,
    grounding_statistics,
    group_rows,
)
from radvlm_grpo.evaluation.predictions import (
    DEFAULT_BATCH_SIZE,
    answer_of,
    build_generator,
    generate_predictions,
    generation_record,
    generation_summary,
    prepare_output,
    regeneration_rule,
    resolve_backend,
)
from radvlm_grpo.evaluation.report_metrics import lexical_statistics
from radvlm_grpo.evaluation.tables import format_size, results_markdown
from radvlm_grpo.generation import SamplingSettings

logger = logging.getLogger(__name__)

METRICS_FILE, RESULTS_FILE, SAMPLES_FILE, CARD_FILE, FIGURES_DIR = (
    "metrics.json",
    "results.md",
    "samples.jsonl",
    "model_card.md",
    "figures",
)


def model_label(args: EvaluationArguments) -> str:
    return args.model_label or Path(args.model_name_or_path.rstrip("/")).name


def load_eval_split(args: EvaluationArguments):
    dataset = load_recipe_dataset(args.dataset_name, args.dataset_config, splits=args.split)[args.split]
    check_columns(dataset.column_names, "grpo", source=f"{args.dataset_name}[{args.split}]")
    present = set(dataset.unique("task"))
    tasks = args.tasks or [t for t in GRPO_TASKS if t in present]
    if not tasks:
        raise ValueError(f"{args.dataset_name}[{args.split}] has no rows of the evaluated tasks {list(GRPO_TASKS)}.")
    dataset = select_tasks(dataset, tasks)
    if args.max_samples:
        dataset = dataset.select(range(min(args.max_samples, len(dataset))))
    return edit_prompts(dataset, args.think_suffix, args.report_prompt, args.system_prompt)


def _intervals(statistics: list[Statistic], args: EvaluationArguments) -> dict[str, Interval]:
    return bootstrap(statistics, n_resamples=args.n_bootstrap, seed=args.bootstrap_seed)


def _per_sample(statistics: list[Statistic]) -> dict[str, list[float | None]]:
    """Each sample's own score, None where the scorer gave none (kept out of the mean), for samples.jsonl."""
    return {
        s.name: [float(v) if np.isfinite(v) else None for v in s.per_sample]
        for s in statistics
        if s.per_sample is not None
    }


def score_reports(rows, results, args, plan: ClinicalPlan, samples: list[dict]) -> tuple[dict, dict]:
    """Interval per report metric and extras (CheXbert per condition); fills the rows' per-sample scores."""
    answers = [answer_of(results[i].text, args.thinking, args.report_think_occurrence) for i in rows]
    references = [samples[i]["reference"] for i in rows]  # filled from the solution column
    statistics = lexical_statistics(answers, references)
    clinical, extras = clinical_statistics(answers, references, plan, args)
    statistics += clinical
    for name, values in _per_sample(statistics).items():
        for i, value in zip(rows, values):
            samples[i][name] = value
    for i, answer in zip(rows, answers):
        samples[i]["answer"] = answer
    return _intervals(statistics, args), extras


def score_grounding(all_boxes, rows, results, args, samples: list[dict]) -> tuple[dict, dict]:
    """Interval per grounding metric per benchmark, and the boxes of each row (for the figure)."""
    pred_boxes, true_boxes = {}, {}
    for i in rows:
        answer = answer_of(results[i].text, args.thinking, args.grounding_think_occurrence)
        samples[i]["answer"] = answer
        pred_boxes[i] = parse_boxes(answer, args.box_scale)
        true_boxes[i] = as_boxes(all_boxes[i])
        samples[i]["predicted_boxes"] = pred_boxes[i].round(4).tolist()
    groups = group_rows([samples[i]["benchmark"] for i in rows])
    report = {}
    for benchmark, positions in groups.items():
        chosen = [rows[p] for p in positions]
        statistics = grounding_statistics([pred_boxes[i] for i in chosen], [true_boxes[i] for i in chosen])
        if benchmark != ALL_GROUNDING:
            for name, values in _per_sample(statistics).items():
                for i, value in zip(chosen, values):
                    samples[i][name] = value
        report[benchmark] = _intervals(statistics, args)
    return report, {"pred": pred_boxes, "true": true_boxes}


def _box_figure_rows(rows: list[int], samples: list[dict], count: int) -> list[int]:
    """Up to ``count`` rows, taken in turn from each benchmark so that every one is shown."""
    by_benchmark: dict[str, list[int]] = {}
    for i in rows:
        by_benchmark.setdefault(samples[i]["benchmark"], []).append(i)
    chosen, queues = [], [list(q) for q in by_benchmark.values()]
    while len(chosen) < count and any(queues):
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop(0))
    return chosen


def draw_figures(dataset, samples, report_rows, grounding_rows, boxes, extras, args, folder: Path) -> dict[str, Path]:
    paths = {}
    if report_rows:
        paths["report_lengths"] = figures.plot_report_lengths(
            [samples[i]["answer"] for i in report_rows],
            [samples[i]["reference"] for i in report_rows],
            folder / "report_lengths.png",
        )
    if extras.get("chexbert_per_condition"):
        paths["chexbert_per_condition"] = figures.plot_chexbert_per_condition(
            extras["chexbert_per_condition"], folder / "chexbert_per_condition.png"
        )
    chosen = _box_figure_rows(grounding_rows, samples, args.num_box_figures)
    if chosen:
        panels = [
            (
                dataset[i]["image"],
                boxes["pred"][i],
                boxes["true"][i],
                f"{samples[i]['benchmark'].split('/')[-1]}: AP {samples[i].get('map_50', 0):.2f}",
            )
            for i in chosen
        ]
        paths["grounding_boxes"] = figures.plot_boxes(panels, folder / "grounding_boxes.png")
    return paths


def _as_dicts(intervals: dict[str, Interval]) -> dict[str, dict]:
    return {name: interval.to_dict() for name, interval in intervals.items()}


def base_card(args: EvaluationArguments):
    """The model's own card when it is a local folder with one, else a fresh card (training not recorded)."""
    from huggingface_hub import ModelCard

    local = Path(args.model_name_or_path) / "README.md"
    if local.is_file():
        return ModelCard.load(local)
    return render_model_card(CardInfo(model_id=args.hub_model_id or args.model_name_or_path, stage=None))


def run_evaluation(
    args: EvaluationArguments, sampling: SamplingSettings, recipe: Recipe | None = None, generator=None
) -> dict:
    """Evaluate ``args.model_name_or_path`` on ``args.dataset_name``; returns what ``metrics.json`` holds."""
    output_dir = Path(args.output_dir)
    # Clinical scorers first: missing weights stop the run here, not after hours of generation.
    plan = plan_clinical_metrics(args)
    dataset = load_eval_split(args)
    backend = resolve_backend(args.backend)
    predictions_path = prepare_output(output_dir, generation_record(args, sampling, backend), args.overwrite)
    num_parameters = None
    if generator is None:
        generator, num_parameters = build_generator(args, sampling, backend)
    retry = regeneration_rule(args.thinking, args.max_regenerations, sampling)
    results = generate_predictions(
        dataset,
        generator,
        sampling,
        predictions_path,
        batch_size=args.batch_size or DEFAULT_BATCH_SIZE.get(backend, 8),
        retry=retry,
        max_attempts=1 + args.max_regenerations if retry else 1,
    )
    del generator  # free the accelerator for the clinical scorers
    gc.collect()

    # Whole columns: indexing rows would decode every image.
    tasks, ids, solutions = dataset["task"], dataset["id"], dataset["solution"]
    sources = dataset["source"] if "source" in dataset.column_names else [None] * len(dataset)
    samples = [
        {
            "id": ids[i],
            "task": tasks[i],
            "benchmark": benchmark_of(tasks[i], ids[i], sources[i]),
            "reference": solutions[i],
            "prediction": results[i].text,
            "num_tokens": results[i].num_tokens,
            "truncated": results[i].truncated,
            "attempts": results[i].attempts,
        }
        for i in range(len(dataset))
    ]
    report_rows = [i for i, t in enumerate(tasks) if t == REPORT_GENERATION]
    grounding_rows = [i for i, t in enumerate(tasks) if t != REPORT_GENERATION]
    report, extras, grounding, boxes = None, {}, None, {"pred": {}, "true": {}}
    if report_rows:
        report, extras = score_reports(report_rows, results, args, plan, samples)
    if grounding_rows:
        grounding, boxes = score_grounding(dataset["boxes"], grounding_rows, results, args, samples)

    label = model_label(args)
    size = args.model_size or format_size(num_parameters)
    intervals = {}
    if report is not None:
        intervals[REPORT_GENERATION] = _as_dicts(report)
    for benchmark, values in (grounding or {}).items():
        intervals[benchmark] = _as_dicts(values)
    not_computed = plan.not_computed if report_rows else {}
    metrics = {
        "model": args.model_name_or_path,
        "model_revision": args.model_revision,
        "label": label,
        "size_b": size,
        "dataset": args.dataset_name,
        "dataset_config": args.dataset_config,
        "split": args.split,
        "n": len(dataset),
        "thinking": args.thinking,
        "box_scale": args.box_scale,
        "sampling": vars(sampling).copy(),
        "backend": backend,
        "bootstrap": {"n_resamples": args.n_bootstrap, "seed": args.bootstrap_seed, "confidence": 0.95},
        "generation": generation_summary(results, args.thinking),
        "metrics": intervals,
        "not_computed": not_computed,
        **({"chexbert_per_condition": extras["chexbert_per_condition"]} if "chexbert_per_condition" in extras else {}),
    }
    (output_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    with (output_dir / SAMPLES_FILE).open("w") as handle:
        for sample in samples:
            handle.write(json.dumps(sample) + "\n")

    report_points = {k: v["value"] for k, v in intervals.get(REPORT_GENERATION, {}).items()} if report else None
    map_points = (
        {b: values["map_50"].value for b, values in grounding.items() if b != ALL_GROUNDING} if grounding else None
    )
    markdown = results_markdown(
        label,
        size,
        args.dataset_name,
        args.split,
        report_points,
        map_points,
        intervals,
        not_computed,
        args.n_bootstrap,
    )
    (output_dir / RESULTS_FILE).write_text(markdown)
    figure_paths = draw_figures(
        dataset, samples, report_rows, grounding_rows, boxes, extras, args, output_dir / FIGURES_DIR
    )

    summary = EvaluationSummary(
        label=label,
        size=size,
        dataset=args.dataset_name,
        split=args.split,
        n=len(dataset),
        intervals=intervals,
        report_metrics=report_points,
        map_by_benchmark=map_points,
        not_computed=not_computed,
        figures={name: f"{FIGURES_DIR}/{path.name}" for name, path in figure_paths.items()},
        command=" ".join(
            [
                "python scripts/evaluate.py",
                *([recipe.path] if recipe and recipe.path else []),
                *(recipe.overrides if recipe else []),
            ]
        ),
        recipe_text=recipe.text if recipe else None,
        n_resamples=args.n_bootstrap,
    )
    card = apply_evaluation(base_card(args), summary)
    card.save(output_dir / CARD_FILE)
    logger.info(f"Evaluation written to {output_dir}: {RESULTS_FILE}, {METRICS_FILE}, {FIGURES_DIR}/, {CARD_FILE}")

    if args.push_to_hub:
        from radvlm_grpo.hub import HUB_EVALUATION_DIR, push_evaluation

        # On the Hub the figures sit in evaluation/, next to the card that links them.
        hub_summary = replace(
            summary, figures={name: f"{HUB_EVALUATION_DIR}/{path.name}" for name, path in figure_paths.items()}
        )
        files = [*figure_paths.values(), output_dir / METRICS_FILE, output_dir / RESULTS_FILE]
        url = push_evaluation(
            repo_id=args.hub_model_id or args.model_name_or_path,
            summary=hub_summary,
            files={f"{HUB_EVALUATION_DIR}/{path.name}": path for path in files},
            revision=args.hub_revision,
        )
        logger.info(f"Evaluation pushed to {url}")
    return metrics
