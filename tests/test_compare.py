import json

from radvlm_grpo.evaluation.compare import comparison_table, merged_metrics, plot_reward_curves, reward_history


def _metrics(path, blocks):
    path.write_text(json.dumps({"metrics": blocks}))
    return path


def entry(value, low, high):
    return {"value": value, "low": low, "high": high, "n": 10}


def test_table_merges_grounding_and_report_models(tmp_path):
    sft = merged_metrics(
        [
            _metrics(
                tmp_path / "sft.json",
                {
                    "grounding": {"soft_f1": entry(0.5, 0.45, 0.55), "map_50": entry(0.4, 0.3, 0.5)},
                    "report_generation": {"avg_chars": entry(120.0, 110.0, 130.0)},
                },
            )
        ]
    )
    grpo = merged_metrics(
        [
            _metrics(tmp_path / "g.json", {"grounding": {"soft_f1": entry(0.6, 0.55, 0.65)}}),
            _metrics(tmp_path / "r.json", {"report_generation": {"avg_chars": entry(100.0, 95.5, 104.5)}}),
        ]
    )
    assert comparison_table({"SFT": sft, "GRPO": grpo}) == (
        "| metric | SFT | GRPO |\n"
        "|---|---|---|\n"
        "| grounding soft-F1 | 0.500 [0.450, 0.550] | 0.600 [0.550, 0.650] |\n"
        "| grounding mAP@0.5 | 0.400 [0.300, 0.500] | – |\n"
        "| mean report length (characters) | 120.0 [110.0, 130.0] | 100.0 [95.5, 104.5] |\n"
    )


def test_reward_curves(tmp_path):
    state = tmp_path / "trainer_state.json"
    state.write_text(
        json.dumps({"log_history": [{"step": 5, "rewards/soft_f1/mean": 0.1}, {"step": 10, "loss": 1.0},
                                    {"step": 10, "rewards/soft_f1/mean": 0.3}]})
    )  # fmt: skip
    assert reward_history(state, "soft_f1") == ([5, 10], [0.1, 0.3])
    path = plot_reward_curves({"grounding": (state, "soft_f1")}, tmp_path / "curves.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
