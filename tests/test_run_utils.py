import logging
from types import SimpleNamespace

from huggingface_hub import ModelCard

from radvlm_grpo.publishing.cards import CardInfo, write_model_card
from radvlm_grpo.training.run_utils import LogFileProgressCallback, last_complete_checkpoint, use_project_card


def test_resume_skips_a_checkpoint_whose_save_did_not_finish(tmp_path, caplog):
    for step, complete in ((2, True), (10, True), (12, False)):  # killed while writing checkpoint-12
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-notanumber").mkdir()
    with caplog.at_level(logging.WARNING):
        assert last_complete_checkpoint(tmp_path, logging.getLogger("t")) == str(tmp_path / "checkpoint-10")
    assert "checkpoint-12" in caplog.text
    assert last_complete_checkpoint(tmp_path / "missing") is None
    assert last_complete_checkpoint(tmp_path / "checkpoint-12") is None


def _fake_trainer(output_dir, global_step=0, log_history=()):
    """What ``use_project_card`` reads from a trainer (the e2e tests in test_grpo.py run it with TRL's own)."""
    return SimpleNamespace(
        is_world_process_zero=lambda: True,
        args=SimpleNamespace(output_dir=str(output_dir), max_steps=40),
        state=SimpleNamespace(global_step=global_step, max_steps=0, log_history=list(log_history)),
    )


def test_the_run_card_replaces_trls_placeholder_and_says_the_run_is_unfinished(tmp_path):
    info = CardInfo(
        model_id=str(tmp_path),
        stage="grpo",
        base_model="Qwen/Qwen3-VL-8B-Instruct",
        datasets=["data/radvlm_grpo"],
        recipe_path="recipes/radvlm/grpo.yaml",
        recipe_text="learning_rate: 1.0e-06\n",
        tags=["radcliq"],
    )
    trainer = _fake_trainer(tmp_path)
    use_project_card(trainer, info, metric_keys=["reward"])
    card = ModelCard.load(tmp_path / "README.md")
    assert "Training in progress, or stopped before it finished" in card.text and "when the run started" in card.text
    assert card.data.base_model == "Qwen/Qwen3-VL-8B-Instruct" and "grpo" in card.data.tags
    assert "recipes/radvlm/grpo.yaml" in card.text and "`data/radvlm_grpo`" in card.text

    # At a checkpoint, TRL calls create_model_card(model_name=...): the project's card comes back, with the step.
    trainer.state.global_step = 8
    trainer.state.log_history = [{"reward": 0.25, "step": 4}, {"reward": 0.5, "step": 8}]
    trainer.create_model_card(model_name=tmp_path.name)
    text = (tmp_path / "README.md").read_text()
    assert "written at step 8 of 40" in text and "| last_logged_reward | 0.5 |" in text
    assert "fine-tuned version of" not in text

    # The finished run's card (scripts write it with write_model_card) carries no such note.
    write_model_card(tmp_path, info)
    assert "Training in progress" not in (tmp_path / "README.md").read_text()


def test_log_file_progress_hides_nested_bars_only_while_training(monkeypatch):
    import transformers

    monkeypatch.setattr("radvlm_grpo.training.run_utils._writes_to_terminal", lambda: False)
    callback = LogFileProgressCallback()
    state = SimpleNamespace(is_world_process_zero=True, max_steps=3, global_step=0)
    assert transformers.utils.logging.is_progress_bar_enabled()
    callback.on_train_begin(None, state, None)
    try:
        assert not transformers.utils.logging.is_progress_bar_enabled(), "checkpoint-shard bars would nest"
        callback.on_prediction_step(None, state, None, eval_dataloader=[1, 2])
        assert callback.prediction_bar is None, "an evaluation bar would nest under the training bar"
    finally:
        callback.on_train_end(None, state, None)
    assert transformers.utils.logging.is_progress_bar_enabled()
    callback.on_prediction_step(None, state, None, eval_dataloader=[1, 2])  # after training: a bar of its own
    assert callback.prediction_bar is not None
    callback.on_evaluate(None, state, None)
