import logging

from radvlm_grpo.run_utils import last_complete_checkpoint


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
