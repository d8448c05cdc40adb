"""Dataset converters (RadVLM JSON, Open-i, NIH), synthetic chest X-rays, cold-start traces, mixing and loading."""
