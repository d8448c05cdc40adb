import ast
import json
import re
from pathlib import Path

import pytest

from radvlm_grpo.evaluation.compare import comparison_table, merged_metrics, plot_reward_curves, reward_history

REPO_ROOT = Path(__file__).resolve().parents[1]


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


# --- any runs, from the command line ---------------------------------------------------------------------------------


def _eval_dir(folder, model, rouge, dataset="data/openi/grpo"):
    folder.mkdir(parents=True)
    metrics = {
        "model": model,
        "dataset": dataset,
        "dataset_config": None,
        "split": "test",
        "metrics": {
            "report_generation": {"rouge_l": entry(rouge, rouge - 0.01, rouge + 0.01)},
            "grounding": {"map_50": entry(0.5, 0.4, 0.6)},
        },
    }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def _train_dir(folder, rewards, lengths, in_checkpoint=False):
    history = [
        {"step": 10 * (i + 1), "rewards/gleu/mean": r, "completions/mean_length": n, "loss": 0.1}
        for i, (r, n) in enumerate(zip(rewards, lengths))
    ]
    state = folder / ("checkpoint-20" if in_checkpoint else "") / "trainer_state.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"log_history": history}))
    if in_checkpoint:  # an older checkpoint must not be picked
        (folder / "checkpoint-5").mkdir()
        (folder / "checkpoint-5" / "trainer_state.json").write_text(json.dumps({"log_history": []}))
    return folder


def test_compare_cli_on_two_evaluations_and_two_training_runs(tmp_path):
    from radvlm_grpo.evaluation.compare import main

    run_a = _eval_dir(tmp_path / "a", "me/sft", 0.2)
    _train_dir(run_a, [0.1, 0.2, 0.3], [120.0, 110.0, 90.0])  # one folder can be both
    run_b = _eval_dir(tmp_path / "b", "me/grpo", 0.25)
    run_c = _train_dir(tmp_path / "c", [0.15, 0.35], [100.0, 101.0], in_checkpoint=True)
    written = main([str(run_a), str(run_b), str(run_c), "--output_dir", str(tmp_path / "out"), "--labels", "SFT",
                    "GRPO", "GRPO running"])  # fmt: skip
    text = (tmp_path / "out" / "comparison.md").read_text()
    assert "| group | metric | SFT (`data/openi/grpo`) | GRPO (`data/openi/grpo`) |" in text
    assert "| report_generation | rouge_l | 20.0 [19.0, 21.0] (n=10) | 25.0 [24.0, 26.0] (n=10) |" in text
    assert "different test sets" not in text
    assert "| logged | SFT | GRPO running |" in text
    assert "| rewards/gleu/mean | 0.1 → 0.3 (steps 10-30) | 0.15 → 0.35 (steps 10-20) |" in text
    assert "| completions/mean_length | 120 → 90 (steps 10-30) | 100 → 101 (steps 10-20) |" in text
    assert "(training log `checkpoint-20/trainer_state.json`)" in text
    assert written["reward_curves"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_cli_refuses_a_folder_that_is_no_run(tmp_path):
    from radvlm_grpo.evaluation.compare import main

    run = _eval_dir(tmp_path / "eval", "me/m", 0.2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="neither metrics.json .* nor trainer_state.json"):
        main([str(run), str(tmp_path / "empty"), "--output_dir", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="one label per run"):
        main([str(run), str(run), "--output_dir", str(tmp_path / "out"), "--labels", "only-one"])
    other = _eval_dir(tmp_path / "x" / "eval", "me/m", 0.3, dataset="data/nih/grpo")
    main([str(run), str(other), "--output_dir", str(tmp_path / "out")])
    text = (tmp_path / "out" / "comparison.md").read_text()
    assert "| x/eval (`data/nih/grpo`) |" in text and "different test sets" in text  # same names: parent added
    assert not (tmp_path / "out" / "reward_curves.png").exists()


# --- monitoring: the logged keys the docs name, and the trackers the package offers ------------------------------------


def test_the_recipes_readme_names_only_keys_the_grounding_reward_logs():
    from radvlm_grpo.rewards import get_reward_funcs

    logged = {}
    reward = get_reward_funcs(["soft_f1"])[0]
    reward(
        ["It is at [0.1, 0.1, 0.5, 0.5].", "There is none.", "At [2, 2, 0.5, 0.5]."],
        log_metric=lambda key, value: logged.setdefault(key, value),
        solution=["", "", ""],
        boxes=[[[0.1, 0.1, 0.5, 0.5]]] * 3,
        task=["anatomical_grounding"] * 3,
        id=["a", "b", "c"],
    )
    readme = (REPO_ROOT / "recipes" / "README.md").read_text()
    named = set(re.findall(r"`(soft_f1/[a-z_]+)`", readme))
    assert named and named <= set(logged), named - set(logged)
    assert "soft_f1/no_box_frac" in named


def test_the_tracking_extra_installs_trackers_transformers_can_report_to():
    from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK

    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    pins = next(
        ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "_deps"
    )
    extras = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "extras")
    tracking = next(v for k, v in zip(extras.keys, extras.values) if ast.literal_eval(k) == "tracking")
    packages = [ast.literal_eval(a) for a in tracking.args]
    assert packages and set(packages) <= set(INTEGRATION_TO_CALLBACK)  # the names `report_to` accepts
    assert "trackio==0.43.0" in pins  # a fast mover (0.x): pinned exactly
    readme = (REPO_ROOT / "recipes" / "README.md").read_text()
    assert '".[tracking]"' in readme and "report_to: [tensorboard]" in readme
