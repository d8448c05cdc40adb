"""A web page for a checkpoint (Gradio): upload a chest X-ray, pick a task, read the report or see the boxes drawn.

``page.build_app`` builds the page around a ``models.inference.Predictor``; ``app/app.py`` at the repository root
runs it, locally or as a Hugging Face Space. Needs the ``app`` extra (``pip install -e ".[app]"``).
"""
