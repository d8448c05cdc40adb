"""Per-recipe edits of GRPO prompts: the thinking suffix, a replacement report question, a system message.

The stored dataset keeps RadVLM's prompts; recipes that start from another model (Qwen3-VL's baseline prompt) or a
thinking model (" /think") change only the ``prompt`` column, at load time.
"""

from __future__ import annotations

from datasets import Dataset

from radvlm_grpo.vocab.prompts import THINK_SUFFIX
from radvlm_grpo.vocab.schema import REPORT_GENERATION


def _edit_question(content: list[dict], new_text: str | None, suffix: str) -> list[dict]:
    """Replace and/or suffix the last text part of a user turn, leaving image parts where they are."""
    content = [dict(part) for part in content]
    text_parts = [i for i, part in enumerate(content) if part["type"] == "text"]
    if not text_parts:
        raise ValueError("A GRPO prompt's user turn has no text part.")
    last = text_parts[-1]
    text = new_text if new_text is not None else content[last]["text"]
    if suffix and not text.endswith(suffix):
        text += suffix
    content[last]["text"] = text
    return content


def edit_prompt(
    prompt: list[dict],
    task: str,
    think_suffix: bool = False,
    report_prompt: str | None = None,
    system_prompt: str | None = None,
) -> list[dict]:
    messages = [dict(m) for m in prompt if m["role"] != "system"] if system_prompt else [dict(m) for m in prompt]
    user = next((m for m in reversed(messages) if m["role"] == "user"), None)
    if user is None:
        raise ValueError("A GRPO prompt has no user turn.")
    new_text = report_prompt if task == REPORT_GENERATION else None
    user["content"] = _edit_question(user["content"], new_text, THINK_SUFFIX if think_suffix else "")
    if system_prompt:
        messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system_prompt}]})
    return messages


def edit_prompts(
    dataset: Dataset,
    think_suffix: bool = False,
    report_prompt: str | None = None,
    system_prompt: str | None = None,
) -> Dataset:
    """Apply ``edit_prompt`` to every row; a no-op (no copy) when the recipe asks for nothing."""
    if not (think_suffix or report_prompt or system_prompt):
        return dataset

    def edit(prompt: list[dict], task: str) -> dict:
        return {"prompt": edit_prompt(prompt, task, think_suffix, report_prompt, system_prompt)}

    return dataset.map(edit, input_columns=["prompt", "task"], desc="Editing prompts")
