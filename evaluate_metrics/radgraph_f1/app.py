"""Gradio widget for the Hub Space of this metric (the Space holds this folder)."""

import os

import evaluate
from evaluate.utils import launch_gradio_widget

# Load the script next to this file: on a Space, and in a checkout, without needing the modules cache.
module = evaluate.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "radgraph_f1.py"))
launch_gradio_widget(module)
