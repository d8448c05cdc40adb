"""Our RadGraph against the upstream package's goldens, and the RadGraph-F1 arithmetic on hand-built parses.

The goldens (``tests/fixtures/scorers/goldens_radgraph.json``) were written by radgraph 0.1.18 on transformers 4.57.6
with the small random-weight models of ``tests/fixtures/scorers/radgraph{,-xl}/``
(``scripts/goldens/make_radgraph_goldens.py``).
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
import torch

from radvlm_grpo.scorers import radgraph as rg
from radvlm_grpo.scorers.radgraph import (
    F1RadGraph,
    RadGraph,
    entity_relation_f1,
    preprocess,
    radgraph_f1,
    radgraph_f1_levels,
)

FIXTURES = Path(__file__).parent / "fixtures" / "scorers"
MODEL_TYPES = ("radgraph", "radgraph-xl")


@pytest.fixture(scope="module")
def goldens() -> dict:
    return json.loads((FIXTURES / "goldens_radgraph.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def pairs() -> list[dict]:
    return json.loads((FIXTURES / "corpus.json").read_text(encoding="utf-8"))["pairs"]


@pytest.fixture(scope="module", params=MODEL_TYPES)
def model(request) -> RadGraph:
    return RadGraph(request.param, model_dir=FIXTURES, device="cpu", batch_size=32)


@pytest.fixture(scope="module")
def annotations(model, goldens) -> list[dict]:
    return model.annotate(goldens["reports"])


def test_goldens_are_rich(goldens):
    """The fixture exercises decoding: many entities and relations, and every label of each model."""
    for model_type in MODEL_TYPES:
        golden = goldens["models"][model_type]
        assert golden["n_entities"] > 2000 and golden["n_relations"] > 500
        labels = {e["label"] for a in golden["annotations"] for e in a["entities"].values()}
        vocabulary = rg.read_label_vocabulary(FIXTURES / model_type / "vocabulary")
        assert labels == set(vocabulary[f"{model_type}__ner_labels"]) - {""}


def test_annotations_match_upstream(model, annotations, goldens):
    expected = goldens["models"][model.model_type]["annotations"]
    mismatched = [i for i, (a, b) in enumerate(zip(annotations, expected)) if a != b]
    assert len(annotations) == len(expected)
    assert not mismatched, f"{len(mismatched)} reports differ, first: {goldens['reports'][mismatched[0]]!r}"


def test_scores_match_upstream(model, annotations, goldens, pairs):
    golden_pairs = goldens["models"][model.model_type]["pairs"]
    index = {text: i for i, text in enumerate(goldens["reports"])}
    for pair, golden in zip(pairs, golden_pairs):
        hyp, ref = annotations[index[pair["hyp"]]], annotations[index[pair["ref"]]]
        assert entity_relation_f1(hyp, ref) == pytest.approx(golden["radcliq_radgraph"], abs=1e-5)
        if pair["hyp"].strip() and pair["ref"].strip():
            levels = radgraph_f1_levels(hyp, ref)
            assert levels == pytest.approx((golden["simple"], golden["partial"], golden["complete"]), abs=1e-5)


def test_f1radgraph_matches_upstream(model, goldens, pairs):
    """Upstream's return shape; empty and whitespace-only pairs score 0 and are left out of the annotations."""
    chosen = [p for p in pairs if p["category"] in ("empty", "whitespace", "published_f1radgraph", "mixed_case")]
    golden = {p["id"]: p for p in goldens["models"][model.model_type]["pairs"]}
    f1 = F1RadGraph(radgraph=model)
    mean, (simple, partial, complete), hyp_annotations, ref_annotations = f1(
        [p["hyp"] for p in chosen], [p["ref"] for p in chosen]
    )
    expected = [(golden[p["id"]]["simple"], golden[p["id"]]["partial"], golden[p["id"]]["complete"]) for p in chosen]
    for got, want in zip(zip(simple, partial, complete), expected):
        assert got == pytest.approx(want, abs=1e-5)
    assert mean == pytest.approx(tuple(sum(e[k] for e in expected) / len(expected) for k in range(3)), abs=1e-5)
    n_scored = sum(bool(p["hyp"].strip() and p["ref"].strip()) for p in chosen)
    assert len(hyp_annotations) == len(ref_annotations) == n_scored < len(chosen)
    one_level, values, _, _ = f1([p["hyp"] for p in chosen], [p["ref"] for p in chosen], level="complete")
    assert values == pytest.approx(complete) and one_level == pytest.approx(mean[2])


def test_batched_equals_one_at_a_time(model, goldens, annotations):
    reports = goldens["reports"][::6]
    one = RadGraph(model.model_type, model_dir=FIXTURES, device="cpu", batch_size=1)
    assert one.annotate(reports) == [annotations[goldens["reports"].index(r)] for r in reports]


def test_empty_reports_read_as_none(model):
    empty, blank, text = model.annotate(["", " \n\t", "no acute process"])
    assert empty["text"] == blank["text"] == "None"
    assert text["text"] == "no acute process"
    assert set(empty) == {"text", "entities", "data_source", "data_split"}


def test_preprocessing_as_upstream():
    # RadGraph v1: punctuation split off by upstream's regex ("-" stays inside words, as its character class has it).
    assert preprocess("Left-sided PICC/line: 2.5cm.", "radgraph") == [
        "Left-sided", "PICC", "/", "line", ":", "2", ".", "5cm", ".",
    ]  # fmt: skip
    # RadGraph-XL: escaped newlines become spaces, then nltk's wordpunct tokens with upstream's fixes.
    assert preprocess("Opacities (50%).  ET\\ntube", "radgraph-xl") == [
        "Opacities", "(", "50", "%", ")", ".", "ET", "tube",
    ]  # fmt: skip
    assert preprocess("Opacities (50%).  ET\\ntube", "radgraph") == ["Opacities", "(", "50%", ")", ".", "ET\\ntube"]
    words = preprocess("no evidence of acute cardiopulmonary process moderate hiatal hernia", "radgraph")
    assert words.index("acute") == 3 and words.index("hernia") == 8  # metrics.md's published token indices


# ---------------------------------------------------------------------------------------------------------------------
# F1 arithmetic on hand-built parses.


def _annotation(*entities) -> dict:
    """Entities as (tokens, label, [(relation, target id), ...])."""
    return {
        "text": "",
        "entities": {
            str(i + 1): {"tokens": t, "label": lab, "start_ix": i, "end_ix": i, "relations": [list(r) for r in rels]}
            for i, (t, lab, rels) in enumerate(entities)
        },
    }


OP, OA, AP, OM = (
    "Observation::definitely present",
    "Observation::definitely absent",
    "Anatomy::definitely present",
    "Observation::measurement::definitely present",
)


def test_published_readme_example():
    """metrics.md: radgraph README (radgraph-xl, "all") gives (0.75, 0.6666666666666666, 0.6538461538461539)."""
    no_acute = _annotation(("acute", OA, []), ("cardiopulmonary", AP, []), ("abnormality", OA, [("located_at", "2")]))
    hyp = _annotation(
        ("et", OP, [("modify", "2")]),
        ("tube", OP, []),
        ("2 cm", OM, [("modify", "2")]),
        ("carina", AP, []),
        ("bibasilar", AP, []),
        ("opacities", OP, []),
    )
    ref = _annotation(
        ("endotracheal", OP, [("modify", "2")]),
        ("tube", OP, []),
        ("bibasilar", AP, []),
        ("opacities", OP, [("located_at", "3"), ("suggestive_of", "6")]),
        ("mild", OP, [("modify", "6")]),
        ("atelectasis", "Observation::uncertain", []),
    )
    first, second = radgraph_f1_levels(no_acute, no_acute), radgraph_f1_levels(hyp, ref)
    assert first == (1.0, 1.0, 1.0)
    assert second == pytest.approx((0.5, 1 / 3, 4 / 13))
    means = tuple((a + b) / 2 for a, b in zip(first, second))
    assert means == pytest.approx((0.75, 0.6666666666666666, 0.6538461538461539), abs=1e-12)


def test_lowercasing_only_at_complete_level():
    """PyPI 0.1.18: simple and partial compare tokens as written; complete lowercases relation tuples."""
    hyp = _annotation(("Effusion", OP, [("located_at", "2")]), ("Pleural", AP, []))
    ref = _annotation(("effusion", OP, [("located_at", "2")]), ("pleural", AP, []))
    assert radgraph_f1(hyp, ref, "simple") == 0.0
    assert radgraph_f1(hyp, ref, "partial") == 0.0
    assert radgraph_f1(hyp, ref, "complete") == pytest.approx(0.5)  # the relation matches, "Pleural" does not


def test_no_entities_scores_zero():
    empty, some = _annotation(), _annotation(("effusion", OP, []))
    for level in rg.LEVELS:
        assert radgraph_f1(empty, some, level) == radgraph_f1(some, empty, level) == radgraph_f1(empty, empty, level)
        assert radgraph_f1(empty, empty, level) == 0.0
    with pytest.raises(ValueError, match="level"):
        radgraph_f1(some, some, "all")


def test_entity_relation_f1_as_radcliq():
    """CXR-Report-Metric: both F1s 0 on empty sets, so an identical parse without relations scores 0.5; relations
    keep both ends' labels and are not lowercased."""
    plain = _annotation(("effusion", OP, []), ("pleural", AP, []))
    related = _annotation(("effusion", OP, [("located_at", "2")]), ("pleural", AP, []))
    assert entity_relation_f1(_annotation(), _annotation()) == 0.0
    assert entity_relation_f1(plain, plain) == 0.5
    assert entity_relation_f1(related, related) == 1.0
    relabelled = _annotation(("effusion", OP, [("located_at", "2")]), ("pleural", OA, []))
    assert entity_relation_f1(relabelled, related) == pytest.approx((0.5 + 0.0) / 2)
    upper = _annotation(("Effusion", OP, [("located_at", "2")]), ("pleural", AP, []))
    assert entity_relation_f1(upper, related) == pytest.approx((0.5 + 0.0) / 2)


# ---------------------------------------------------------------------------------------------------------------------
# Loading.


def test_missing_archive_names_file_and_repo(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True, raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"), raising=False)
    with pytest.raises(FileNotFoundError) as error:
        RadGraph("radgraph-xl")
    assert "radgraph-xl.tar.gz" in str(error.value) and "StanfordAIMI/RRG_scorers" in str(error.value)


def test_incomplete_folder_names_missing_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError) as error:
        RadGraph("radgraph", model_dir=tmp_path)
    message = str(error.value)
    assert "weights.th" in message and "vocabulary" in message and "StanfordAIMI/RRG_scorers" in message


def test_missing_encoder_names_its_repo(tmp_path):
    folder = tmp_path / "radgraph"
    folder.mkdir()
    for name in ("weights.th", "vocabulary"):
        (folder / name).symlink_to(FIXTURES / "radgraph" / name)
    config = json.loads((FIXTURES / "radgraph" / "config.json").read_text())
    config["dataset_reader"]["token_indexers"]["bert"]["model_name"] = "some-org/absent-encoder"
    config["model"]["embedder"]["token_embedders"]["bert"]["model_name"] = "some-org/absent-encoder"
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(FileNotFoundError, match="some-org/absent-encoder"):
        RadGraph("radgraph", model_dir=tmp_path)


def test_hub_archive_is_extracted_once(tmp_path, monkeypatch, goldens):
    """The Hub path: the archive (here a local copy, as hf_hub_download would return it) is extracted to the cache."""
    archive = tmp_path / "blob" / "0123abcd"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for item in sorted((FIXTURES / "radgraph").iterdir()):
            tar.add(item, arcname=item.name)
    asked = []
    monkeypatch.setattr(rg, "hub_file", lambda repo, filename, what, **_: asked.append((repo, filename)) or archive)
    monkeypatch.setenv(rg.CACHE_ENV, str(tmp_path / "cache"))
    model = RadGraph("radgraph", device="cpu")
    assert asked == [("StanfordAIMI/RRG_scorers", "radgraph.tar.gz")]
    assert model.folder.is_relative_to(tmp_path / "cache")
    assert model.annotate(goldens["reports"][:3]) == goldens["models"]["radgraph"]["annotations"][:3]
    assert RadGraph("radgraph", device="cpu").folder == model.folder
    assert RadGraph("radgraph", model_dir=archive, device="cpu").folder == model.folder  # a downloaded archive


def test_strict_weights(tmp_path):
    folder = tmp_path / "radgraph"
    folder.mkdir()
    for name in ("config.json", "vocabulary", "encoder"):
        (folder / name).symlink_to(FIXTURES / "radgraph" / name)
    state = torch.load(FIXTURES / "radgraph" / "weights.th", weights_only=True)
    state.pop("_endpoint_span_extractor._span_width_embedding.weight")
    state["_ner.extra"] = torch.zeros(1)
    torch.save(state, folder / "weights.th")
    with pytest.raises(RuntimeError, match="span_width_embedding.*_ner.extra"):
        RadGraph("radgraph", model_dir=folder)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_matches_upstream(goldens):
    for model_type in MODEL_TYPES:
        model = RadGraph(model_type, model_dir=FIXTURES, device="cuda", batch_size=64)
        assert model.annotate(goldens["reports"]) == goldens["models"][model_type]["annotations"]


def test_a_folder_without_the_model_is_described_and_its_downloaded_archive_is_used(tmp_path, monkeypatch):
    """`evaluate.load("radgraph_f1", weights_dir=...)` passes the folder as model_dir: what it holds, the `hf download`
    that fixes it, and the archive that command leaves there is then read."""
    folder = tmp_path / "weights"
    (folder / "radgraph_xl_old").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as error:
        RadGraph("radgraph-xl", model_dir=folder)
    message = str(error.value)
    assert f"{folder} holds: radgraph_xl_old/" in message
    assert message.splitlines()[-1].strip() == (
        f"hf download StanfordAIMI/RRG_scorers radgraph-xl.tar.gz --local-dir {folder}"
    )
    with tarfile.open(folder / "radgraph-xl.tar.gz", "w:gz") as tar:
        tar.add(FIXTURES / "radgraph-xl", arcname="radgraph-xl")
    monkeypatch.setenv(rg.CACHE_ENV, str(tmp_path / "cache"))
    assert RadGraph("radgraph-xl", model_dir=folder, device="cpu").folder.is_relative_to(tmp_path / "cache")
