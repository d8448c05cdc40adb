"""The web page of a checkpoint, for a local run or a Hugging Face Space (this folder is the Space's content).

Locally:   python app/app.py --model_name_or_path data/demo-grpo
As a Space: copy app.py and requirements.txt into a Gradio Space and set the variable RADVLM_MODEL to the
checkpoint's Hub id (a private or gated one also needs the secret HF_TOKEN).
"""

from radvlm_grpo.app.page import main
from radvlm_grpo.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
