"""The evaluate modules: files a Hub Space needs, the modules-cache install, and `evaluate.load("soft_f1")` offline."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from radvlm_grpo.evaluation.install_modules import (
    DEFAULT_METRICS_DIR,
    default_modules_cache,
    find_modules,
    install_metrics,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
MODULES = ["chexbert_f1", "grounding_map", "radcliq", "radgraph_f1", "soft_f1"]


def test_module_folders_are_complete():
    assert DEFAULT_METRICS_DIR == REPO_ROOT / "evaluate_metrics"
    assert sorted(find_modules(DEFAULT_METRICS_DIR)) == MODULES
    for name in MODULES:
        folder = DEFAULT_METRICS_DIR / name
        for file in ("README.md", "app.py", "requirements.txt", f"{name}.py"):
            assert (folder / file).is_file(), f"{name}/{file}"
        card = (folder / "README.md").read_text(encoding="utf-8")
        front = card.split("---")[1]
        for key in ("title:", "sdk: gradio", "app_file: app.py", "tags:", "- evaluate", "- metric", "description:"):
            assert key in front, f"{name}: front matter lacks {key!r}"
        for section in ("## Metric Description", "## How to Use", "### Inputs", "### Output Values", "## Citation"):
            assert section in card, f"{name}: card lacks {section!r}"


def test_scripts_pass_evaluates_import_scanner():
    # evaluate reads `import a, b` as a library named "a,": one import per line, and every library importable.
    for name in MODULES:
        for line in (DEFAULT_METRICS_DIR / name / f"{name}.py").read_text(encoding="utf-8").splitlines():
            match = re.match(r"^(?:import|from)\s+([^\s.]+)", line)
            if match:
                assert not line.startswith("import") or "," not in line, line
                assert importlib.util.find_spec(match.group(1)) is not None, line


def test_default_cache_follows_evaluates_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "mods"))
    assert default_modules_cache() == tmp_path / "mods"
    monkeypatch.delenv("HF_MODULES_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert default_modules_cache() == tmp_path / "hf" / "modules"


def test_install_layout_and_idempotence(tmp_path):
    cache = tmp_path / "cache"
    installed = install_metrics(modules_cache=cache)
    assert sorted(installed) == MODULES
    for name, path in installed.items():
        assert path.name == f"{name}.py" and len(path.parent.name) == 64
        assert path.parent.parent == cache / "evaluate_modules" / "metrics" / f"evaluate-metric--{name}"
        for folder in (
            cache / "evaluate_modules",
            cache / "evaluate_modules" / "metrics",
            path.parent.parent,
            path.parent,
        ):
            assert (folder / "__init__.py").is_file()
        assert path.read_bytes() == (DEFAULT_METRICS_DIR / name / f"{name}.py").read_bytes()
    snapshot = sorted(str(p.relative_to(cache)) for p in cache.rglob("*"))
    assert install_metrics(modules_cache=cache) == installed
    assert sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) == snapshot


def test_reinstall_replaces_own_stale_copies_only(tmp_path):
    metrics = tmp_path / "metrics"
    (metrics / "toy").mkdir(parents=True)
    script = metrics / "toy" / "toy.py"
    script.write_text("VERSION = 1\n")
    cache = tmp_path / "cache"
    first = install_metrics(metrics, cache)["toy"]
    module_dir = first.parent.parent
    foreign = module_dir / ("f" * 64)  # a copy evaluate itself (or a user) put there: left alone
    foreign.mkdir()
    (foreign / "toy.py").write_text("VERSION = 0\n")
    script.write_text("VERSION = 2\n")
    second = install_metrics(metrics, cache, names=["toy"])["toy"]
    assert second != first and not first.parent.exists() and foreign.exists()
    assert second.stat().st_mtime >= (foreign / "toy.py").stat().st_mtime  # the newest is what evaluate loads
    assert (
        json.loads((second.parent / "toy.json").read_text())["installed_by"]
        == "radvlm_grpo.evaluation.install_modules"
    )
    with pytest.raises(ValueError):
        install_metrics(metrics, cache, names=["nope"])
    with pytest.raises(FileNotFoundError):
        install_metrics(tmp_path / "missing", cache)


def test_evaluate_load_by_name_offline_from_another_directory(tmp_path):
    """`make install` then `evaluate.load("soft_f1")` in a fresh process, elsewhere, offline, in a private cache."""
    cache, elsewhere = tmp_path / "modules", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        "HF_MODULES_CACHE": str(cache),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_EVALUATE_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    subprocess.run(
        [sys.executable, "-m", "radvlm_grpo.evaluation.install_modules"], env=env, cwd=elsewhere, check=True
    )
    # evaluate's top-level import pulls in transformers' pipelines (about 6 s, through its unrelated `evaluator`); the
    # module resolution and loading under test never touch transformers, so this process goes without it.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["transformers"] = None  # only while evaluate imports: its evaluator then skips transformers
        import evaluate
        del sys.modules["transformers"]

        import json
        from radvlm_grpo.evaluation.install_modules import default_modules_cache

        truth = [[0.38, 0.47, 0.76, 0.62]]
        soft_f1 = evaluate.load("soft_f1", keep_in_memory=True)
        grounding_map = evaluate.load("grounding_map", keep_in_memory=True)
        out = {
            "cache_agrees": str(evaluate.config.HF_MODULES_CACHE) == str(default_modules_cache()),
            "fig1": soft_f1.compute(
                predictions=["Cardiomegaly at [0.35, 0.51, 0.75, 0.64]", "at [0.84, 0.34, 0.91, 0.50]"],
                references=[truth, truth],
                return_per_sample=True,
            ),
            "dev": soft_f1.compute(predictions=["[0.35, 0.51, 0.75, 0.64]"], references=[truth], variant="dev"),
            "grid": soft_f1.compute(predictions=["[350, 510, 750, 640]"], references=[truth], box_scale=1000),
            "text_refs": soft_f1.compute(predictions=["[0.35, 0.51, 0.75, 0.64]"], references=["at [0.38, 0.47, 0.76, 0.62]"]),
            "map": grounding_map.compute(
                predictions=["[0.1, 0.1, 0.2, 0.2] and [0.6, 0.6, 0.9, 0.9]"],
                references=[[[0.6, 0.6, 0.9, 0.9]]],
                return_coco=True,
            ),
        }
        print(json.dumps(out))
        """
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, cwd=elsewhere, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    fig1_iou = 0.0407 / 0.0683
    assert out["cache_agrees"]
    assert out["fig1"]["soft_f1"] == pytest.approx(fig1_iou / 2)
    assert out["fig1"]["per_sample"] == pytest.approx([fig1_iou, 0.0])
    assert out["dev"]["soft_f1"] == pytest.approx(2 * fig1_iou / (1 + fig1_iou))
    assert out["grid"]["soft_f1"] == pytest.approx(fig1_iou)
    assert out["text_refs"]["soft_f1"] == pytest.approx(fig1_iou)
    # Miss then hit: AP 0.5 (test_grounding.py); pooled IoU (0 + 1) / 2; one sample, so COCO's AP50 is 0.5 too.
    assert out["map"]["map_50"] == pytest.approx(0.5) and out["map"]["avg_iou"] == pytest.approx(0.5)
    assert out["map"]["coco_ap50"] == pytest.approx(0.5)
    assert "per_sample" not in out["map"]


# --- behaviour, in this process: each module file imported directly (no modules cache) ---------------------------------

SCORER_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "scorers"


def _metric(name: str, **load_kwargs):
    """The module's `evaluate.Metric`, built as `evaluate.load` builds it, from the file in this checkout."""
    import evaluate

    spec = importlib.util.spec_from_file_location(f"_metric_{name}", DEFAULT_METRICS_DIR / name / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (cls,) = [v for v in vars(module).values() if isinstance(v, type) and issubclass(v, evaluate.Metric)]
    return cls(keep_in_memory=True, **load_kwargs)


@pytest.fixture(scope="module")
def metrics():
    weights = {"weights_dir": str(SCORER_FIXTURES), "device": "cpu"}
    return {
        name: _metric(name, **(weights if name in ("chexbert_f1", "radcliq", "radgraph_f1") else {}))
        for name in MODULES
    }


@pytest.mark.parametrize("name", MODULES)
def test_an_empty_prediction_list_is_refused_the_same_way_by_every_module(metrics, name):
    """Before: soft_f1 and grounding_map crashed inside evaluate (IndexError), chexbert_f1 said 0.0, radcliq and
    radgraph_f1 NaN (with numpy warnings). A mean over zero pairs is undefined: all five now raise one clear error."""
    with pytest.raises(ValueError, match=rf"^{name}: no predictions to score \(an empty list\)"):
        metrics[name].compute(predictions=[], references=[])


class _Recorder:
    """Wraps a scorer and keeps the texts it was given."""

    def __init__(self, scorer):
        self.scorer, self.calls = scorer, []

    def __call__(self, hyps, refs, **kwargs):
        self.calls.append((list(hyps), list(refs)))
        return self.scorer(hyps, refs, **kwargs)


def test_radgraph_f1_cuts_both_texts_to_2048_characters_by_default(metrics):
    """RadGraph's cost grows faster than the text (115k characters: 302 s on the fixture weights): the module cuts
    both texts first, as the paper's RGF1 reward did, so a babbling prediction costs what 2,048 characters cost."""
    metric = metrics["radgraph_f1"]
    metric.compute(predictions=["warm-up."], references=["warm-up."])  # weights loaded
    recorder = metric.scorer = _Recorder(metric.scorer)
    babble = "Small left pleural effusion. " * 4000  # 116k characters
    first = metric.compute(predictions=[babble], references=[babble])
    (hyps, refs), *_ = recorder.calls
    assert [len(hyps[0]), len(refs[0])] == [2048, 2048] and hyps[0] == babble[:2048]
    assert (
        first["radgraph_complete"]
        == metric.compute(predictions=[babble[:2048]], references=[babble[:2048]])["radgraph_complete"]
    )
    recorder.calls.clear()
    metric.compute(predictions=[babble[:3000]], references=[babble[:100]], max_chars=None)
    metric.compute(predictions=[babble[:3000]], references=[babble[:100]], max_chars=2500)
    assert [len(c[0][0]) for c in recorder.calls] == [3000, 2500]
    with pytest.raises(ValueError, match="max_chars must be a positive integer or None"):
        metric.compute(predictions=["a"], references=["a"], max_chars=0)
    metric.scorer = recorder.scorer


@pytest.mark.parametrize("name", ["soft_f1", "grounding_map"])
def test_grounding_modules_read_the_first_4000_characters_and_say_so(metrics, name):
    metric = metrics[name]
    late_box = "x" * 4000 + " [0.1, 0.1, 0.5, 0.5]"
    key = "soft_f1" if name == "soft_f1" else "map_50"
    truth = [[[0.1, 0.1, 0.5, 0.5]]]
    assert metric.compute(predictions=[late_box], references=truth)[key] == 0.0
    assert metric.compute(predictions=[late_box], references=truth, max_chars=None)[key] == 1.0
    assert "4,000 characters" in metric.info.description and "max_chars" in metric.info.inputs_description
    card = (DEFAULT_METRICS_DIR / name / "README.md").read_text(encoding="utf-8")
    assert "4,000 characters" in card and "**max_chars**" in card
