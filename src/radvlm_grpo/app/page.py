"""Serve a checkpoint as a web page: upload a chest X-ray, pick a task, read the report or see the boxes drawn.

Examples:
    # a local folder or a Hub id; the page is at http://127.0.0.1:7860
    python app/app.py --model_name_or_path data/demo-grpo
    # a Space sets RADVLM_MODEL (and GRADIO_SERVER_NAME=0.0.0.0) instead of flags
    RADVLM_MODEL=me/RadVLM-GRPO python app/app.py

Answers are greedy, from the same RadVLM questions and answer parsing as scripts/predict.py. Needs the app extra:
pip install -e ".[app]".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from PIL import Image

from radvlm_grpo.cli import UserError, parse_dataclasses, run_cli
from radvlm_grpo.models.generation import SamplingSettings
from radvlm_grpo.models.inference import Predictor, describe_boxes, draw_prediction, load_predictor
from radvlm_grpo.vocab.schema import GROUNDING_TASKS, GRPO_TASKS, REPORT_GENERATION

MODEL_ENV = "RADVLM_MODEL"
USAGE = "python app/app.py --model_name_or_path MODEL [--server_port PORT] [options]"
TASK_LABELS = {
    "report_generation": "Report",
    "anatomical_grounding": "Anatomical region",
    "abnormality_grounding": "Abnormality",
    "phrase_grounding": "Phrase",
}
INTRO = (
    "Upload a frontal chest X-ray, pick a task and press **Run**. *Report* writes a findings report; the three "
    'grounding tasks draw boxes around what you name: an anatomical region ("right lung"), an abnormality '
    '("pleural effusion") or a phrase of a report. Research code, not a medical device.'
)


@dataclass
class AppArguments:
    """Which checkpoint the page serves, and where."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": f"Hub id or local folder (LoRA adapters too); default: the {MODEL_ENV} environment variable."
        },
    )
    processor_name_or_path: str | None = field(
        default=None, metadata={"help": "Where the processor comes from when the model folder has none."}
    )
    box_scale: float = field(
        default=1.0, metadata={"help": "The boxes' grid: 1 for RadVLM's [0, 1], 1000 for Qwen3-VL."}
    )
    thinking: bool = field(
        default=False, metadata={"help": "A thinking model: ask with ' /think', answer after </think>."}
    )
    max_new_tokens: int = field(default=512, metadata={"help": "Most tokens generated per answer."})
    server_name: str | None = field(
        default=None, metadata={"help": "Address to listen on (Gradio's default: GRADIO_SERVER_NAME or 127.0.0.1)."}
    )
    server_port: int | None = field(
        default=None, metadata={"help": "Port (Gradio's default: GRADIO_SERVER_PORT or the first free from 7860)."}
    )

    def __post_init__(self):
        self.model_name_or_path = self.model_name_or_path or os.environ.get(MODEL_ENV) or None
        if not self.model_name_or_path:
            raise UserError(f"Name the checkpoint to serve: --model_name_or_path MODEL, or set {MODEL_ENV}=MODEL.")


def make_handler(predictor: Predictor) -> Callable:
    """What the Run button calls: (image, task, subject) -> (answer, boxes as text, the image with its boxes)."""
    import gradio as gr

    def run(image: Image.Image | None, task: str, subject: str | None):
        if image is None:
            raise gr.Error("Upload a chest X-ray first.")
        if task not in GRPO_TASKS:
            raise gr.Error(f"Pick a task: {', '.join(TASK_LABELS.values())}.")
        try:
            prediction = predictor.ask(image, task, subject if task in GROUNDING_TASKS else None)
        except UserError as error:
            raise gr.Error(str(error)) from error
        if task == REPORT_GENERATION:
            return prediction.answer, "", prediction.query.image
        return prediction.answer, describe_boxes(prediction.boxes), draw_prediction(prediction)

    return run


def build_app(predictor: Predictor, title: str | None = None):
    """The page: the image, the task and what to locate on the left; the answer, the boxes and the drawing on the
    right. ``run`` is also an API endpoint (``/predict``)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    title = title or f"RadVLM-GRPO: {predictor.name}"
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"# {title}\n\n{INTRO}")
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="pil", label="Chest X-ray", sources=["upload", "clipboard"], elem_id="xray")
                task = gr.Radio(
                    [(label, name) for name, label in TASK_LABELS.items()],
                    value="report_generation",
                    label="Task",
                    elem_id="task",
                )
                subject = gr.Textbox(
                    label="What to locate (grounding tasks)",
                    placeholder="right lung / pleural effusion / Small left pleural effusion.",
                    elem_id="subject",
                )
                run = gr.Button("Run", variant="primary", elem_id="run")
            with gr.Column():
                answer = gr.Textbox(label="Answer", lines=4, interactive=False, elem_id="answer")
                boxes = gr.Textbox(label="Boxes [x1, y1, x2, y2] (0 to 1)", interactive=False, elem_id="boxes")
                drawn = gr.Image(
                    type="pil", format="png", label="Boxes on the image", interactive=False, elem_id="result"
                )
        run.click(make_handler(predictor), [image, task, subject], [answer, boxes, drawn], api_name="predict")
    return app


def load(args: AppArguments) -> Predictor:
    return load_predictor(
        args.model_name_or_path,
        processor=args.processor_name_or_path,
        sampling=SamplingSettings(max_new_tokens=args.max_new_tokens),
        box_scale=args.box_scale,
        thinking=args.thinking,
        batch_size=1,
    )


def main(argv: list[str] | None = None) -> None:
    (args,) = parse_dataclasses(
        [AppArguments], sys.argv[1:] if argv is None else argv, description=__doc__, usage=USAGE
    )
    try:
        import gradio  # noqa: F401
    except ImportError as error:
        raise UserError('The web app needs Gradio: pip install -e ".[app]" (or -r app/requirements.txt).') from error
    build_app(load(args)).launch(server_name=args.server_name, server_port=args.server_port)


if __name__ == "__main__":
    run_cli(main)
