"""Write the shared report corpus that the scorer goldens are computed on (``tests/fixtures/scorers/corpus.json``).

The corpus is what every clinical scorer (RadGraph, CheXbert, BERTScore, RadCliQ) is checked against upstream on, so
it mixes the published test reports of metrics.md (sections 1 and 4) with the inputs most likely to break a
re-implementation: empty and whitespace-only strings, identical pairs, reports long enough to exceed 512 word pieces,
odd unicode and punctuation, numbers and measurements, mixed case, MIMIC-style findings paragraphs (synthetic, written
here: no patient text) and the reports of ``radvlm_grpo.data.synthetic_tasks``. It is deterministic: the same file
comes out on every run.

    python scripts/goldens/make_corpus.py [--output tests/fixtures/scorers/corpus.json] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from radvlm_grpo.data.synthetic_scene import Finding
from radvlm_grpo.data.synthetic_tasks import SIDES, SIZES, ZONES, finding_text, write_report

DEFAULT_OUTPUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "scorers" / "corpus.json"

# metrics.md section 1: radgraph tests/radgraph_test.py::test_f1radgraph (hyp, ref).
_F1RADGRAPH_REFS = [
    "no acute cardiopulmonary abnormality",
    "et tube terminates 2 cm above the carina retraction by several centimeters is recommended for more optimal "
    "placement bibasilar consolidations better assessed on concurrent chest ct",
    "there is no significant change since the previous exam the feeding tube and nasogastric tube have been removed",
    "unchanged mild pulmonary edema no radiographic evidence pneumonia",
    "no evidence of acute pulmonary process moderately large size hiatal hernia",
    "no acute intrathoracic process",
]
_F1RADGRAPH_HYPS = [
    "no acute cardiopulmonary abnormality",
    "endotracheal tube terminates 2 5 cm above the carina bibasilar opacities likely represent atelectasis or "
    "aspiration",
    "there is no significant change since the previous exam",
    "unchanged mild pulmonary edema and moderate cardiomegaly",
    "no evidence of acute cardiopulmonary process moderate hiatal hernia",
    "no acute cardiopulmonary process",
]
# metrics.md section 1: radgraph README (radgraph-xl) and the single-report tests.
_README_XL = [
    ("no acute cardiopulmonary abnormality", "no acute cardiopulmonary abnormality"),
    (
        "et tube terminates 2 cm above the carina and bibasilar opacities",
        "endotracheal tube is present and bibasilar opacities likely represent mild atelectasis",
    ),
]
_SINGLE_REPORTS = [
    "no evidence of acute cardiopulmonary process moderate hiatal hernia",
    "No evidence of pneumothorax following chest tube removal.",
]
# metrics.md section 4: RadEval tests/test_radcliq.py (hyp, ref).
_RADCLIQ_TEST = [
    ("No acute findings.", "No acute cardiopulmonary process."),
    (
        "Bilateral pleural effusions and basilar atelectasis.",
        "Small bilateral pleural effusions with bibasilar atelectasis.",
    ),
    ("Mild cardiomegaly with clear lungs.", "Mild cardiomegaly. No pleural effusion."),
]
# metrics.md section 4: RadEval tests/test_basics.py.
_BASICS_REFS = [
    "No acute cardiopulmonary process.",
    "No radiographic findings to suggest pneumonia.",
    "1.Status post median sternotomy for CABG with stable cardiac enlargement and calcification of the aorta "
    "consistent with atherosclerosis.Relatively lower lung volumes with no focal airspace consolidation appreciated."
    "Crowding of the pulmonary vasculature with possible minimal perihilar edema, but no overt pulmonary edema.No "
    "pleural effusions or pneumothoraces.",
    "1. Left PICC tip appears to terminate in the distal left brachiocephalic vein.2. Mild pulmonary vascular "
    "congestion.3. Interval improvement in aeration of the lung bases with residual streaky opacity likely reflective "
    "of atelectasis.Interval resolution of the left pleural effusion.",
    "No definite acute cardiopulmonary process.Enlarged cardiac silhouette could be accentuated by patient's "
    "positioning.",
    "Increased mild pulmonary edema and left basal atelectasis.",
]
_BASICS_HYPS = [
    "No acute cardiopulmonary process.",
    "No radiographic findings to suggest pneumonia.",
    "Status post median sternotomy for CABG with stable cardiac enlargement and calcification of the aorta consistent "
    "with atherosclerosis.",
    "Relatively lower lung volumes with no focal airspace consolidation appreciated.",
    "Crowding of the pulmonary vasculature with possible minimal perihilar edema, but no overt pulmonary edema.",
    "No pleural effusions or pneumothoraces.",
]
# metrics.md section 4: RadEval README example, then the "divergence gallery" (hyp, ref).
_RADEVAL_README = [
    (
        "Mildly enlarged cardiac silhouette with small pleural effusions and dependent bibasilar atelectasis.",
        "Mild cardiomegaly with small bilateral pleural effusions and basilar atelectasis.",
    ),
    ("No pleural effusions or pneumothoraces.", "No pleural effusions or pneumothoraces."),
]
_DIVERGENCE = [
    ("No acute cardiopulmonary process.", "No acute cardiopulmonary process."),
    ("Mild cardiomegaly.", "The cardiac silhouette is mildly enlarged."),
    ("No pleural effusion.", "Pleural effusion."),
    ("Mild cardiomegaly. Small bilateral pleural effusions.", "Mild cardiomegaly."),
    ("No acute findings.", "No acute findings. Small right pneumothorax."),
    ("Left lower lobe consolidation consistent with pneumonia.", "Right upper lobe mass."),
    ("Mild pulmonary edema.", "Severe pulmonary edema."),
    ("Stable bibasilar atelectasis without consolidation.", "New right lower lobe consolidation."),
]

# Sentence bank for MIMIC-style findings paragraphs (written for this corpus).
_DEVICES = [
    "Endotracheal tube tip terminates {n} cm above the carina.",
    "The enteric tube courses below the diaphragm with the tip in the stomach.",
    "Right internal jugular central venous catheter tip is in the mid SVC.",
    "Left-sided PICC line terminates in the lower superior vena cava.",
    "A dual-lead left-sided pacemaker is unchanged in position.",
    "Median sternotomy wires and mediastinal clips are intact.",
    "A right-sided chest tube remains in place.",
    "Nasogastric tube has been removed.",
]
_LUNGS = [
    "The lungs are clear without focal consolidation.",
    "There is a new opacity in the {side} lower lobe concerning for pneumonia.",
    "Patchy bibasilar opacities likely reflect atelectasis.",
    "Mild pulmonary vascular congestion without frank edema.",
    "Moderate pulmonary edema has worsened since the prior study.",
    "Streaky {side} basilar opacity is most consistent with atelectasis, though aspiration cannot be excluded.",
    "A {n} mm nodule projects over the {side} {zone} lung zone.",
    "Lung volumes are low, causing crowding of the bronchovascular markings.",
    "Hyperinflated lungs with flattening of the diaphragms, compatible with COPD.",
    "Interval improvement in the {side} upper lobe consolidation.",
    "Diffuse interstitial markings are unchanged.",
    "No focal consolidation is seen.",
]
_PLEURA = [
    "No pleural effusion or pneumothorax.",
    "There is a small {side} pleural effusion.",
    "Small bilateral pleural effusions are slightly larger.",
    "A trace {side} apical pneumothorax is new.",
    "Blunting of the {side} costophrenic angle may reflect a small effusion or pleural thickening.",
    "No pneumothorax is identified.",
    "Moderate {side} pleural effusion with adjacent compressive atelectasis.",
]
_HEART = [
    "The cardiomediastinal silhouette is within normal limits.",
    "The heart is mildly enlarged.",
    "Moderate cardiomegaly is stable.",
    "Heart size is normal. The aorta is tortuous and calcified.",
    "The mediastinal and hilar contours are unremarkable.",
    "Stable enlargement of the cardiac silhouette.",
]
_OTHER = [
    "No acute osseous abnormality.",
    "Degenerative changes are seen in the thoracic spine.",
    "There is no free air below the diaphragm.",
    "Healed {side} rib fractures are noted.",
    "Surgical clips in the right upper quadrant.",
    "Compared with the prior radiograph, there is no significant change.",
]

_ODD = [
    ("No pneumothorax — no effusion… heart size normal.", "No pneumothorax - no effusion... heart size normal."),
    ("Lungs clear ✓ heart OK 👍", "Lungs are clear. Heart size is normal."),
    ("Épanchement pleural droit modéré.", "Moderate right pleural effusion."),
    ("右侧少量胸腔积液。", "Small right pleural effusion."),
    ("No\u00a0acute\u00a0cardiopulmonary\u00a0process.", "No acute cardiopulmonary process."),
    ("No\u200bacute process\u200b.", "No acute process."),
    ("???", "No acute cardiopulmonary process."),
    ("...", "..."),
    ("-- -- --", "Heart size normal."),
    ("<b>Findings:</b> lungs clear.<br/>", "Findings: lungs clear."),
    ("**IMPRESSION**: No acute process!!!", "IMPRESSION: No acute process."),
    ("Findings:\n\n1) Lungs clear.\n2) No effusion.\n\tHeart normal.", "Lungs clear. No effusion. Heart normal."),
    (
        "(Left) > (right) basilar opacities; ? pneumonia [vs] atelectasis.",
        "Left greater than right basilar opacities.",
    ),
    ("pleural-effusion/pneumothorax: none; cardio-mediastinal: wnl", "No pleural effusion or pneumothorax."),
    ("'Quoted' \"report\" with `backticks` & ampersands @ 3:00 p.m.", "Report at 3 p.m."),
    ("ETT tip 4.5cm above carina; NGT in stomach; R IJ CVC @ cavoatrial jxn.", "Lines and tubes as above."),
    ("no   acute    cardiopulmonary      process", "no acute cardiopulmonary process"),
    ("  leading and trailing spaces.  ", "leading and trailing spaces."),
    ("a", "b"),
    ("No", "Yes"),
    ("lungs", "lungs"),
    ("Ünïcödé ãccents ïn thé lüngs; naïve café façade.", "Unicode accents in the lungs."),
    ("Tab\tseparated\tfindings\tand\rcarriage\rreturns.", "Tab separated findings and carriage returns."),
    ("The the the the the the the the the the.", "The lungs are clear."),
    ("#1 Pneumonia. #2 Effusion. #3 Edema.", "Pneumonia, effusion and edema."),
    ("Right-sided PICC/CVC/ETT/NGT lines & tubes unchanged.", "Support devices unchanged."),
]
_NUMBERS = [
    ("A 2.5 x 3.1 cm mass in the right upper lobe.", "A 25 x 31 mm mass in the right upper lobe."),
    ("Endotracheal tube 3.5 cm above the carina.", "Endotracheal tube 5 cm above the carina."),
    ("Nodule measuring 8mm, previously 6mm.", "Nodule measuring 8 mm, previously 6 mm."),
    ("Compression deformity of T11 and L1 vertebral bodies.", "Compression fractures at T11 and L1."),
    ("Cardiothoracic ratio 0.55 (previously 0.48).", "Mild cardiomegaly."),
    ("Comparison made to study of 01/02/2150 at 10:45.", "Comparison made to prior study."),
    ("Bibasilar opacities, 10-15% of the lung volume.", "Bibasilar opacities."),
    ("Tube tip at the level of T4, 1.2cm from the carina.", "Tube tip 12 mm above the carina."),
    ("3 rib fractures (ribs 5-7) on the left.", "Left fifth through seventh rib fractures."),
    ("Effusion increased from 100 to 250 mL.", "Effusion has increased."),
]
_CASES = [
    ("NO ACUTE CARDIOPULMONARY PROCESS.", "no acute cardiopulmonary process."),
    (
        "Mild Cardiomegaly With Small Bilateral Pleural Effusions.",
        "mild cardiomegaly with small bilateral pleural effusions.",
    ),
    ("No Pneumothorax. RIGHT lower lobe CONSOLIDATION.", "No pneumothorax. Right lower lobe consolidation."),
    ("ENDOTRACHEAL TUBE TERMINATES 4 CM ABOVE THE CARINA.", "Endotracheal tube terminates 4 cm above the carina."),
    ("mIlD pUlMoNaRy EdEmA.", "Mild pulmonary edema."),
    ("Heart Size Is Normal. LUNGS ARE CLEAR.", "heart size is normal. lungs are clear."),
]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        n=rng.choice(["2", "3", "4.5", "5", "6", "12"]), side=rng.choice(["right", "left"]), zone=rng.choice(ZONES)
    )


def mimic_report(rng: random.Random, n_sentences: int | None = None) -> str:
    """A findings paragraph in MIMIC's usual order (devices, lungs, pleura, heart, other)."""
    parts = []
    if rng.random() < 0.4:
        parts.append(_fill(rng.choice(_DEVICES), rng))
    parts += [_fill(t, rng) for t in rng.sample(_LUNGS, rng.randint(1, 2))]
    parts.append(_fill(rng.choice(_PLEURA), rng))
    parts.append(_fill(rng.choice(_HEART), rng))
    if rng.random() < 0.3:
        parts.append(_fill(rng.choice(_OTHER), rng))
    if n_sentences is not None:
        parts = parts[:n_sentences]
    return " ".join(parts)


def perturb(report: str, rng: random.Random) -> str:
    """A plausible model output for ``report``: drop, swap or reword a sentence, or flip a negation."""
    sentences = [s for s in report.split(". ") if s]
    choice = rng.randrange(5)
    if choice == 0 and len(sentences) > 1:
        del sentences[rng.randrange(len(sentences))]
    elif choice == 1 and len(sentences) > 1:
        i = rng.randrange(len(sentences) - 1)
        sentences[i], sentences[i + 1] = sentences[i + 1], sentences[i]
    elif choice == 2:
        sentences[rng.randrange(len(sentences))] = _fill(rng.choice(_LUNGS + _PLEURA), rng).rstrip(".")
    elif choice == 3:
        text = ". ".join(sentences)
        for a, b in (("No ", "Small "), ("small", "large"), ("right", "left"), ("mild", "severe"), ("new", "stable")):
            if a in text:
                return text.replace(a, b, 1)
        return text
    out = ". ".join(sentences)
    return out if out.endswith(".") else out + "."


def long_report(rng: random.Random, target_chars: int = 3000) -> str:
    """A report of about ``target_chars`` characters (well past 512 word pieces for a real tokenizer)."""
    parts: list[str] = []
    bank = _DEVICES + _LUNGS + _PLEURA + _HEART + _OTHER
    while sum(len(p) + 1 for p in parts) < target_chars:
        parts.append(_fill(rng.choice(bank), rng))
    return " ".join(parts)


def synthetic_reports(rng: random.Random, n: int) -> list[str]:
    """Reports as ``synthetic_tasks.write_report`` writes them for the project's synthetic images."""
    reports = []
    for _ in range(n):
        findings = []
        for kind in ("ett", "pacemaker", "consolidation", "nodule", "effusion", "cardiomegaly"):
            if rng.random() >= 0.35:
                continue
            side = zone = size = None
            if kind in ("consolidation", "nodule"):
                side, zone = rng.choice(SIDES), rng.choice(ZONES)
            elif kind == "effusion":
                side, size = rng.choice((*SIDES, "bilateral")), rng.choice(SIZES)
            phrase, sentence = finding_text(kind, side, zone, size)
            side = side if side in SIDES else None  # a bilateral effusion has no side (as synthetic._effusion)
            findings.append(Finding(kind, None, phrase, sentence, masks=[], side=side, zone=zone))
        reports.append(write_report(findings))
    return reports


def build_corpus(seed: int = 0) -> list[dict]:
    """``[{"id", "category", "hyp", "ref"}, ...]`` in a fixed order."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str, str]] = []
    pairs += [("published_f1radgraph", h, r) for h, r in zip(_F1RADGRAPH_HYPS, _F1RADGRAPH_REFS)]
    pairs += [("published_readme_xl", h, r) for h, r in _README_XL]
    pairs += [("published_single", r, r) for r in _SINGLE_REPORTS]
    pairs += [("published_radcliq", h, r) for h, r in _RADCLIQ_TEST]
    pairs += [("published_basics", h, r) for h, r in zip(_BASICS_HYPS, _BASICS_REFS)]
    pairs += [("published_radeval_readme", h, r) for h, r in _RADEVAL_README]
    pairs += [("published_divergence", h, r) for h, r in _DIVERGENCE]
    pairs += [
        ("empty", "", "No acute cardiopulmonary process."),
        ("empty", "No acute cardiopulmonary process.", ""),
        ("empty", "", ""),
        ("whitespace", "   ", "The lungs are clear."),
        ("whitespace", "The lungs are clear.", "\n\t "),
        ("whitespace", " ", " "),
        ("whitespace", "\n", "No pleural effusion."),
    ]
    pairs += [("odd", h, r) for h, r in _ODD]
    pairs += [("numbers", h, r) for h, r in _NUMBERS]
    pairs += [("mixed_case", h, r) for h, r in _CASES]
    for _ in range(4):
        ref = long_report(rng)
        pairs.append(("long", perturb(ref, rng) if rng.random() < 0.5 else long_report(rng), ref))
    pairs.append(("long", long_report(rng, 1500), "No acute cardiopulmonary process."))
    for _ in range(12):
        report = mimic_report(rng)
        pairs.append(("identical", report, report))
    for _ in range(80):
        ref = mimic_report(rng)
        hyp = perturb(ref, rng) if rng.random() < 0.7 else mimic_report(rng)
        pairs.append(("mimic", hyp, ref))
    for _ in range(10):
        ref = mimic_report(rng)
        pairs.append(("mimic_lowercase", perturb(ref, rng).lower(), ref.lower()))
    synth = synthetic_reports(rng, 60)
    for i in range(0, len(synth), 2):
        pairs.append(("synthetic", synth[i], synth[i + 1]))
    for report in synth[:5]:
        pairs.append(("synthetic_identical", report, report))
    return [{"id": i, "category": c, "hyp": h, "ref": r} for i, (c, h, r) in enumerate(pairs)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    pairs = build_corpus(args.seed)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {"seed": args.seed, "n_pairs": len(pairs), "pairs": pairs}
    args.output.write_text(json.dumps(payload, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(pairs)} pairs to {args.output}")


if __name__ == "__main__":
    main()
