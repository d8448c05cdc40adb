"""The results tables: exact markdown for fixed inputs, laid out like the paper's Tables 1 and 2."""

from radvlm_grpo.evaluation.tables import (
    PAPER_TABLE1,
    PAPER_TABLE2,
    format_size,
    intervals_markdown,
    results_markdown,
    table1_markdown,
    table2_markdown,
    truncation_warning,
)

REPORT = {
    "rouge_l": 0.2994,
    "bertscore": 0.5915,
    "chexbert_micro_f1_14": 0.57,
    "chexbert_macro_f1_14": 0.334,
    "radgraph_complete": 0.258,
    "radcliq_v1": 0.8649,
}  # no GREEN: shown as "–"


def test_table1_row_layout():
    assert table1_markdown("me/RadVLM", "8.77", REPORT, include_paper=False) == (
        "| Model | Size (B) | R-L | B-S | CXb-micro | CXb-macro | RGF1 | GRN | RCQ↓ |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        "| **me/RadVLM** | 8.77 | 29.9 | 59.2 | 57.0 | 33.4 | 25.8 | – | 0.86 |\n"
    )


def test_table1_keeps_the_paper_rows_first():
    lines = table1_markdown("me/RadVLM", "8.77", REPORT).splitlines()
    assert len(lines) == 2 + len(PAPER_TABLE1) + 1
    assert lines[2] == "| MedGemma-pt | 4 | 20.7 | 47.7 | 49.8 | 32.5 | 15.5 | 21.9 | 1.37 |"
    assert lines[-2] == "| RadVLM-Thinking+RL | 8 | 30.0 | 59.0 | 56.3 | 33.6 | 25.7 | 32.9 | 0.87 |"
    assert lines[-1].startswith("| **me/RadVLM** |")


def test_table2_layout_with_a_benchmark_outside_the_paper():
    maps = {
        "anatomical_grounding/chest-imagenome": 0.845,
        "phrase_grounding/mscxr": 0.87949,
        "phrase_grounding": 0.5,
        "grounding": 0.7,
    }
    assert table2_markdown("me/RadVLM", maps, include_paper=False) == (
        "| Model | Anatomy (Chest ImaGenome) | Abnorm. (VinDr-CXR) | Phrase_MS (MS-CXR) | Phrase_Pad (PadChest-GR) "
        "| Phrase (source not recorded) |\n"
        "|---|---|---|---|---|---|\n"
        "| **me/RadVLM** | 84.5 | – | 87.9 | – | 50.0 |\n"
    )
    with_paper = table2_markdown("me/RadVLM", maps).splitlines()
    assert with_paper[2] == "| MAIRA-2 | 19.8 | 11.3 | 80.1 | 38.8 | – |"
    assert len(with_paper) == 2 + len(PAPER_TABLE2) + 1


def test_intervals_table_units():
    nan = float("nan")
    groups = {
        "report_generation": {
            "rouge_l": {"value": 0.2994, "low": 0.28, "high": 0.31, "n": 3314},
            "radcliq_v1": {"value": 0.8649, "low": 0.85, "high": 0.88, "n": 3314},
            "avg_chars": {"value": 171.4, "low": 168.2, "high": 175.0, "n": 3314},
        },
        "phrase_grounding/mscxr": {"map_50": {"value": 0.879, "low": nan, "high": nan, "n": 1}},
    }
    assert intervals_markdown(groups) == (
        "| group | metric | value | 95% CI | n |\n"
        "|---|---|---|---|---|\n"
        "| report_generation | rouge_l | 29.9 | [28.0, 31.0] | 3314 |\n"
        "| report_generation | radcliq_v1 | 0.865 | [0.850, 0.880] | 3314 |\n"
        "| report_generation | avg_chars | 171 | [168, 175] | 3314 |\n"
        "| phrase_grounding/mscxr | map_50 | 87.9 | – | 1 |\n"
    )


def test_results_file_names_what_was_not_computed():
    text = results_markdown(
        "tiny",
        format_size(292_800),
        "data/synthetic/grpo",
        "test",
        REPORT,
        None,
        {},
        {"green": "no --green_model given"},
    )
    assert "| **tiny** | 0.000293 |" in text
    assert "Visual grounding" not in text
    assert text.rstrip().endswith("Not computed: green (no --green_model given).")
    assert format_size(8_767_123_696) == "8.77" and format_size(None) == "–"


def test_synthetic_grounding_rows_are_not_shown_under_the_papers_datasets():
    maps = {"anatomical_grounding/synthetic": 0.5, "abnormality_grounding": 0.25, "grounding": 0.4}
    assert table2_markdown("tiny", maps, include_paper=False) == (
        "| Model | Anatomy (Chest ImaGenome) | Abnorm. (VinDr-CXR) | Phrase_MS (MS-CXR) | Phrase_Pad (PadChest-GR) "
        "| Anatomy (synthetic) | Abnorm. (source not recorded) |\n"
        "|---|---|---|---|---|---|---|\n"
        "| **tiny** | – | – | – | – | 50.0 | 25.0 |\n"
    )


def test_results_warn_when_answers_are_cut_at_the_token_limit():
    assert truncation_warning({"rows": 24, "truncated": 2}, 64) is None  # 8%: within the 10% tolerance
    warning = truncation_warning({"rows": 24, "truncated": 24}, 64)
    assert warning.startswith("Warning: 24 of 24 generations (100%) stopped at max_new_tokens=64")
    text = results_markdown("tiny", "–", "data/synthetic/grpo", "test", REPORT, None, {}, warnings=[warning])
    assert f"> **{warning}**" in text and text.index(warning) < text.index("## Report generation")
    assert "Warning" not in results_markdown("tiny", "–", "data/synthetic/grpo", "test", REPORT, None, {})


def test_results_name_the_scorer_weights():
    record = {
        "component": "CheXbert",
        "repo_id": "StanfordAIMI/RRG_scorers",
        "revision": "0123456789abcdef0123456789abcdef01234567",
        "files": {"chexbert.pth": "f" * 64},
    }
    local = {"component": "BERTScore distilbert-base-uncased", "local_path": "/w/bertscore", "files": {}}
    text = results_markdown(
        "tiny", "–", "d", "test", REPORT, None, {}, scorers={"chexbert": [record], "bertscore": [local]}
    )
    assert (
        "| chexbert | CheXbert | `StanfordAIMI/RRG_scorers` @ `0123456789ab` | chexbert.pth | `ffffffffffffffff` |"
        in (text)
    )
    assert "| bertscore | BERTScore distilbert-base-uncased | local `/w/bertscore` | – | – |" in text
