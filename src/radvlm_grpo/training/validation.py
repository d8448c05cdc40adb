"""Validation during RL, as the paper's verl runs do: every N optimizer steps, greedy answers on a fixed held-out
subset, scored with the task metrics and logged through the trainer's own loggers (TensorBoard, trackio, W&B...).

What is logged, under ``validation/`` (each only when the subset has rows of that kind):

- grounding rows: ``soft_f1`` (paper form) and ``map_50`` (RadVLM's per-sample mAP@0.5), the mean over rows;
- report rows: ``gleu`` and ``bleu4`` (corpus) and ``rouge_l`` (mean); for the synthetic data (ids ``synthetic-...``)
  ``finding_f1`` (micro over findings, the demo's stand-in for RadCliQ);
- every reward of the run on the rows it scores, as ``reward/<name>``, with the sub-scores it logs
  (``reward/radcliq/radgraph``... : RadCliQ and its four features when the run trains with ``radcliq``);
- ``completion_tokens``: the mean length of the greedy answers.

Off (``validation_steps: 0``) it costs nothing: no callback is added. The subset is ``validation_samples`` rows of the
evaluation split drawn once with seed 0 (``run_utils.load_validation_subset``), the same at every validation and after
a resume; answers are read as ``scripts/evaluate.py`` reads them (after the first ``</think>`` for boxes and the last
for reports when thinking, the first 4,000 characters for boxes); the values go into the trainer's log
history, so they are saved with each checkpoint and the final card shows the last ones.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
from accelerate.utils import gather_object
from transformers import Trainer, TrainerCallback
from trl.models import unwrap_model_for_generation

from radvlm_grpo.metrics.grounding_ap import boxes_from_texts, sample_ap
from radvlm_grpo.metrics.lexical import corpus_bleu, google_bleu, rouge_l_scores
from radvlm_grpo.metrics.soft_f1 import PAPER, soft_f1_batch
from radvlm_grpo.metrics.thinking import FIRST, LAST, extract_answer
from radvlm_grpo.models.generation import GenerationRequest, SamplingSettings, TransformersGenerator
from radvlm_grpo.rewards.demo import finding_micro_f1
from radvlm_grpo.vocab.boxes import RADVLM_SCALE
from radvlm_grpo.vocab.schema import GROUNDING_TASKS, REPORT_GENERATION

logger = logging.getLogger(__name__)

PREFIX = "validation/"
SYNTHETIC_ID_PREFIX = "synthetic-"


def task_metrics(
    tasks: Sequence[str],
    ids: Sequence[str],
    texts: Sequence[str],
    solutions: Sequence[str],
    boxes: Sequence[object],
    box_scale: float = RADVLM_SCALE,
    thinking: bool = False,
) -> dict[str, float]:
    """The validation metrics of greedy answers ``texts`` against their rows (see the module docstring)."""
    metrics: dict[str, float] = {}
    grounding = [i for i, task in enumerate(tasks) if task in GROUNDING_TASKS]
    if grounding:
        # The truth: the row's boxes, or its solution text when it has none (as the grounding rewards read it).
        references = [boxes[i] if boxes[i] is not None and len(boxes[i]) else solutions[i] for i in grounding]
        predictions, truths = boxes_from_texts(
            [texts[i] for i in grounding], references, box_scale, thinking=thinking, occurrence=FIRST
        )
        metrics["soft_f1"] = float(np.mean(soft_f1_batch(predictions, truths, PAPER)))
        metrics["map_50"] = float(np.mean([sample_ap(p, t) for p, t in zip(predictions, truths)]))
    reports = [i for i, task in enumerate(tasks) if task == REPORT_GENERATION]
    if reports:
        answers = [extract_answer(texts[i], thinking=thinking, occurrence=LAST) or "" for i in reports]
        references = [solutions[i] for i in reports]
        metrics["gleu"] = google_bleu(answers, references)
        metrics["bleu4"] = corpus_bleu(answers, references)
        metrics["rouge_l"] = float(np.mean(rouge_l_scores(answers, references)))
        if all(str(ids[i]).startswith(SYNTHETIC_ID_PREFIX) for i in reports):
            metrics["finding_f1"] = finding_micro_f1(answers, references)
    return metrics


def reward_metrics(reward_funcs: Sequence[Callable], texts: Sequence[str], columns: dict) -> dict[str, float]:
    """Each reward's mean over the rows it scores (``reward/<name>``) and the sub-scores it logs."""
    metrics: dict[str, float] = {}

    def log_metric(key: str, value: float) -> None:
        metrics[f"reward/{key}"] = float(value)

    completions = [[{"role": "assistant", "content": text}] for text in texts]
    for func in reward_funcs:
        name = getattr(func, "__name__", type(func).__name__)
        values = [v for v in func(completions, log_metric=log_metric, **columns) if v is not None]
        if values:
            metrics[f"reward/{name}"] = float(np.mean(values))
    return metrics


class ValidationCallback(TrainerCallback):
    """Every ``every`` optimizer steps (and at the last step), greedy answers on ``dataset`` scored and logged.

    Call ``attach(trainer)`` once the trainer exists: the callback logs through ``Trainer.log``, so the values reach
    every logger the recipe's ``report_to`` names and the log history saved with each checkpoint. In a multi-process
    run each process answers its share of the rows (the same number each, for ZeRO-3's synchronised generation) and
    the main process logs.
    """

    def __init__(
        self,
        dataset,
        reward_funcs: Sequence[Callable],
        every: int,
        max_new_tokens: int,
        box_scale: float = RADVLM_SCALE,
        thinking: bool = False,
        batch_size: int = 8,
    ) -> None:
        if every <= 0:
            raise ValueError(f"validation_steps must be positive to validate; got {every}.")
        self.dataset, self.reward_funcs, self.every = dataset, list(reward_funcs), int(every)
        self.settings = SamplingSettings(max_new_tokens=max_new_tokens, temperature=0.0)
        self.box_scale, self.thinking, self.batch_size = box_scale, thinking, batch_size
        self.trainer = None

    def attach(self, trainer) -> ValidationCallback:
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step % self.every == 0 or state.global_step == state.max_steps:
            self.validate(state.global_step)
        return control

    def _answers(self) -> list[tuple[str, int]]:
        """(text, tokens) per row, generated greedily; each process answers an equal share, gathered in order."""
        accelerator = self.trainer.accelerator
        rank, world = accelerator.process_index, accelerator.num_processes
        n = len(self.dataset)
        share = -(-n // world)
        indices = [min(i, n - 1) for i in range(rank * share, (rank + 1) * share)]  # padded with the last row
        results = []
        # TRL's own way to generate from the training model: under ZeRO-3 the weights are gathered once per call
        # (ds3_gather_for_generation) instead of layer by layer at every generated token.
        gather = getattr(self.trainer.args, "ds3_gather_for_generation", True)
        with unwrap_model_for_generation(
            self.trainer.model_wrapped, accelerator, gather_deepspeed3_params=gather
        ) as model:
            was_training = model.training
            model.eval()
            generator = TransformersGenerator(model, self.trainer.processing_class, batch_size=self.batch_size)
            try:
                for start in range(0, len(indices), self.batch_size):
                    rows = [self.dataset[i] for i in indices[start : start + self.batch_size]]
                    requests = [GenerationRequest(str(r["id"]), r["prompt"], [r["image"]]) for r in rows]
                    results += [(g.text, g.num_tokens) for g in generator.generate(requests, self.settings)]
            finally:
                model.train(was_training)
        # gather_object, not gather_for_metrics: the latter trims to the *training* dataloader's remainder at the end
        # of an epoch. Rank order is kept, so the first n are the subset's rows and the padding falls off.
        gathered = gather_object(results) if world > 1 else results
        return list(gathered)[:n]

    def validate(self, step: int) -> dict[str, float]:
        if self.trainer is None:
            raise RuntimeError("ValidationCallback.attach(trainer) was not called.")
        answers = self._answers()
        if not self.trainer.accelerator.is_main_process:
            return {}
        texts = [text for text, _ in answers]
        # Every column but the pixels and the prompt, so a reward that reads another column finds it.
        columns = {
            name: list(self.dataset[name]) for name in self.dataset.column_names if name not in ("image", "prompt")
        }
        metrics = task_metrics(
            columns["task"], columns["id"], texts, columns["solution"], columns["boxes"], self.box_scale, self.thinking
        )
        metrics |= reward_metrics(self.reward_funcs, texts, columns)
        metrics["completion_tokens"] = float(np.mean([tokens for _, tokens in answers]))
        logged = {PREFIX + key: value for key, value in metrics.items()}
        logger.info("Validation at step %d on %d rows: %s", step, len(texts), _summary(logged))
        # Trainer.log, not GRPOTrainer.log: TRL's override would flush (and clear) the training metrics it is averaging
        # for the next logging step.
        Trainer.log(self.trainer, logged)
        return logged


def _summary(metrics: dict[str, float]) -> str:
    return ", ".join(f"{key.removeprefix(PREFIX)}={value:.4f}" for key, value in metrics.items())
