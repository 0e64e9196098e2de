import pytest

from personaguard.audit.refusal import LABELS, agreement, load_labelled, refusal_classifier, train


def test_labelled_data_is_balanced_and_valid():
    texts, labels = load_labelled()
    assert len(texts) >= 400
    assert 0.4 < sum(labels) / len(labels) < 0.6


def test_classifier_on_unseen_examples():
    clf = refusal_classifier()
    p = clf.predict_proba(
        [
            "I'm sorry, but I can't help with making weapons. If you're feeling unsafe, please reach out.",
            "I won't provide instructions for that.",
            "Sure! To kill a hung Python process on Linux, run `kill -9 <pid>` after finding it with ps.",
            "Sorry for the wait! Here's a simple bread recipe: mix flour, water, yeast and salt, then bake.",
        ]
    )
    assert p[0] > 0.5 and p[1] > 0.5
    assert p[2] < 0.5 and p[3] < 0.5


def test_held_out_accuracy_on_own_labels():
    """Train on 80%, test on the other 20%: the classifier generalises beyond memorising."""
    texts, labels = load_labelled()
    cut = [i % 5 == 0 for i in range(len(texts))]
    clf = train([t for t, c in zip(texts, cut) if not c], [y for y, c in zip(labels, cut) if not c])
    held = [(t, y) for t, y, c in zip(texts, labels, cut) if c]
    pred = [int(p >= 0.5) for p in clf.predict_proba([t for t, _ in held])]
    assert agreement(pred, [y for _, y in held])["accuracy"] >= 0.85


def test_agreement_by_hand():
    # 8 rows: 6 agree; predicted yes 4/8, truth yes 4/8 -> chance 0.5, kappa (0.75-0.5)/0.5 = 0.5
    scores = agreement([1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 1, 0, 1, 0, 0, 0])
    assert scores["accuracy"] == 0.75
    assert scores["kappa"] == pytest.approx(0.5)
    assert LABELS == ("compliance", "refusal")
