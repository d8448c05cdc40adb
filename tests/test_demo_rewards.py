"""The demo rewards: finding_f1 reads the synthetic reports' findings back and scores them as a finding-level F1."""

import numpy as np
import pytest

from radvlm_grpo.data.synthetic import SyntheticConfig, make_scene, row_rng
from radvlm_grpo.data.synthetic_tasks import NORMAL_REPORT, write_report
from radvlm_grpo.rewards import get_reward_funcs
from radvlm_grpo.rewards.demo import finding_f1, finding_micro_f1, read_findings

REPORT = (
    "An endotracheal tube is in place. There is a nodule in the left upper lung. There is consolidation in the right "
    "mid lung. There are small bilateral pleural effusions. No pneumothorax. The heart is enlarged."
)


def test_read_findings_with_side_zone_and_size():
    assert read_findings(REPORT) == {
        ("ett",),
        ("nodule", "left", "upper"),
        ("consolidation", "right", "mid"),
        ("effusion", "bilateral", "small"),
        ("cardiomegaly",),
    }
    assert read_findings(NORMAL_REPORT) == set()
    assert read_findings("there is a NODULE in the left upper lung") == {("nodule", "left", "upper")}
    # A wrong attribute is another finding; a fragment or a negation is none.
    assert read_findings("There is a nodule in the right upper lung.") == {("nodule", "right", "upper")}
    assert read_findings("There is a nodule. No pleural effusion or pneumothorax.") == set()
    assert read_findings("There is a moderate left pleural effusion.") == {("effusion", "left", "moderate")}


def test_every_generated_report_reads_back():
    config = SyntheticConfig()
    for index in range(200):
        findings = make_scene(row_rng(0, "train", index), config).findings
        assert len(read_findings(write_report(findings))) == len({f.sentence for f in findings})


def test_finding_f1_scores():
    assert finding_f1(REPORT, REPORT) == 1.0
    assert finding_f1(NORMAL_REPORT, REPORT) == 0.0
    one_right = (
        "There is a nodule in the left upper lung. The heart is enlarged. There is a nodule in the left mid lung."
    )
    assert finding_f1(one_right, REPORT) == pytest.approx(2 * 2 / (2 * 2 + 1 + 3))
    assert finding_f1(one_right + " " + one_right, REPORT) == finding_f1(one_right, REPORT)  # repeats count once
    # A normal study: no free win for the template unless asked (finding_f1_empty).
    assert finding_f1(NORMAL_REPORT, NORMAL_REPORT) == 0.0
    assert finding_f1(NORMAL_REPORT, NORMAL_REPORT, empty=1.0) == 1.0
    assert finding_f1(REPORT, NORMAL_REPORT, empty=1.0) == 0.0


def test_finding_micro_f1_pools_counts():
    predictions = [REPORT, NORMAL_REPORT, "The heart is enlarged."]
    references = [REPORT, REPORT, NORMAL_REPORT]
    # TP 5, FN 5, FP 1
    assert finding_micro_f1(predictions, references) == pytest.approx(10 / (10 + 5 + 1))
    assert finding_micro_f1([NORMAL_REPORT], [NORMAL_REPORT]) == 0.0
    with pytest.raises(ValueError):
        finding_micro_f1([REPORT], [])


def test_finding_f1_reward_routes_rows_and_logs():
    (reward,) = get_reward_funcs(["finding_f1"])
    logged = {}
    completions = [[{"role": "assistant", "content": REPORT}], NORMAL_REPORT, REPORT, "[0.1, 0.2, 0.3, 0.4]"]
    tasks = ["report_generation", "report_generation", "report_generation", "phrase_grounding"]
    solutions = [REPORT, REPORT, NORMAL_REPORT, "[0.1, 0.2, 0.3, 0.4]"]
    scores = reward(completions, task=tasks, solution=solutions, log_metric=lambda k, v: logged.setdefault(k, v))
    assert scores == [1.0, 0.0, 0.0, None]
    assert logged["finding_f1/micro_f1"] == pytest.approx(10 / (10 + 5 + 5))
    assert logged["finding_f1/pred_findings_mean"] == pytest.approx(10 / 3)
    (thinking,) = get_reward_funcs(["finding_f1"], thinking=True, finding_f1_empty=1.0)
    assert thinking([REPORT, f"<think>x</think>{NORMAL_REPORT}"], solution=[REPORT, NORMAL_REPORT]) == [0.0, 1.0]
    with pytest.raises(ValueError, match="finding_f1_empty"):
        get_reward_funcs(["finding_f1"], finding_f1_empty=2.0)
    assert np.isfinite(reward([""], solution=[REPORT])[0])
