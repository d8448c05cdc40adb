"""GLEU (as evaluate's google_bleu), BLEU and ROUGE-L, checked against hand-computed values and published outputs."""

import pytest

from radvlm_grpo.metrics.lexical import (
    bleu_scores,
    corpus_bleu,
    gleu_scores,
    google_bleu,
    rouge_l_scores,
    tokenize_13a,
)

# The examples of evaluate's google_bleu metric (its docstring states the rounded outputs 0.44, 0.61, 0.53, 0.4).
P1 = "It is a guide to action which ensures that the rubber duck always disobeys the commands of the cat"
P2 = "he read the book because he was interested in world history"
R1A = "It is the guiding principle which guarantees the rubber duck forces never being under the command of the cat"
R1B = "It is a guide to action that ensures that the rubber duck will never heed the cat commands"
R1C = "It is the practical guide for the rubber duck army never to heed the directions of the cat"
R2 = "he was interested in world history because he read the book"


def test_tokenizer_13a_rules():
    # Punctuation split off; "." and "," kept inside numbers; a dash split only after a digit.
    assert tokenize_13a("Heart size 0.35, normal.") == ["Heart", "size", "0.35", ",", "normal", "."]
    assert tokenize_13a("1,000 x-ray 3-4 (AP)") == ["1,000", "x-ray", "3", "-", "4", "(", "AP", ")"]
    assert tokenize_13a("a &amp; b\nc-\nd <skipped>") == ["a", "&", "b", "cd"]
    assert tokenize_13a("") == [] and tokenize_13a(None) == []


def test_tokenizer_matches_sacrebleu():
    tokenizers = pytest.importorskip("sacrebleu.tokenizers.tokenizer_13a")
    reference = tokenizers.Tokenizer13a()
    for text in [P1, "Mild cardiomegaly; no effusion. [0.35, 0.51]", "x &quot;y&quot; 3-4 a.b,c", "é — …  ~{}"]:
        assert tokenize_13a(text) == reference(text).split()


def test_google_bleu_matches_evaluate_examples():
    assert round(google_bleu([P1, P2], [[R1A], [R2]]), 2) == 0.44
    assert round(google_bleu([P1, P2], [[R1A, R1B, R1C], [R2]]), 2) == 0.61
    assert round(google_bleu([P1, P2], [[R1A, R1B, R1C], [R2]], min_len=2), 2) == 0.53
    assert round(google_bleu([P1, P2], [[R1A, R1B, R1C], [R2]], min_len=2, max_len=6), 2) == 0.4
    assert google_bleu([P2], [R2]) == google_bleu([P2], [[R2]])  # a single reference may be a plain string


def test_sentence_gleu_hand_values():
    # "the cat sat" vs "the cat sat on the mat": hypothesis 1-4-grams 3 + 2 + 1 = 6, all in the reference;
    # reference 6 + 5 + 4 + 3 = 18. GLEU = min(6/6, 6/18) = 1/3.
    # "the" x 7 vs the same reference: 7 + 6 + 5 + 4 = 22 n-grams, 2 matches ("the" twice): 2 / max(22, 18) = 1/11.
    scores = gleu_scores(
        ["the cat sat", "the the the the the the the", "", "x"], ["the cat sat on the mat"] * 3 + [""]
    )
    assert scores == pytest.approx([1 / 3, 1 / 11, 0.0, 0.0])
    # Sentence scores average differently from the corpus score (n-gram counts are pooled there).
    assert gleu_scores([P1, P2], [R1A, R2]) != pytest.approx([google_bleu([P1, P2], [R1A, R2])] * 2)
    with pytest.raises(ValueError):
        gleu_scores(["a"], [])


def test_bleu():
    assert bleu_scores([P1], [P1]) == pytest.approx([1.0])
    assert bleu_scores(["", "x"], ["a report", ""]) == [0.0, 0.0]
    # Unsmoothed sentence BLEU-4 of a 3-token hypothesis has no 4-gram match: practically 0 (NLTK returns a
    # denormal-sized value rather than 0). Smoothing (method1) keeps it informative.
    plain = bleu_scores(["the cat sat"], ["the cat sat on the mat"], smooth=False)[0]
    smoothed = bleu_scores(["the cat sat"], ["the cat sat on the mat"])[0]
    assert plain < 1e-10 and 0.01 < smoothed < 1.0
    # BLEU-1 by hand: precision 3/3, brevity penalty exp(1 - 6/3) = e^-1.
    assert bleu_scores(["the cat sat"], ["the cat sat on the mat"], max_order=1)[0] == pytest.approx(0.36787944117)
    assert 0.0 < corpus_bleu([P1, P2], [R1A, R2]) < 1.0


def test_corpus_bleu_matches_sacrebleu():
    sacrebleu = pytest.importorskip("sacrebleu")
    expected = sacrebleu.corpus_bleu([P1, P2], [[R1A, R2]]).score / 100
    assert corpus_bleu([P1, P2], [R1A, R2]) == pytest.approx(expected, abs=1e-12)


def test_rouge_l():
    # LCS("the cat sat", "the cat sat on the mat") = 3: precision 1, recall 1/2, F = 2 * 0.5 / 1.5 = 2/3.
    assert rouge_l_scores(["the cat sat"], ["the cat sat on the mat"]) == pytest.approx([2 / 3])
    # Several references: the best one counts.
    assert rouge_l_scores(["the cat sat"], [["a dog", "the cat sat"]]) == pytest.approx([1.0])
    assert rouge_l_scores(["", "x"], ["a", ""]) == [0.0, 0.0]
    # Stemming: "sits" vs "sit" only match with the stemmer.
    assert rouge_l_scores(["cats sits"], ["cat sit"])[0] == 0.0
    assert rouge_l_scores(["cats sits"], ["cat sit"], use_stemmer=True)[0] == pytest.approx(1.0)
