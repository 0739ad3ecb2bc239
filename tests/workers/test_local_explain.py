"""Naming the words that made the local model choose its label."""

from __future__ import annotations

from workers.recommenders import local_explain
from workers.recommenders.local import build_pipeline

DOCUMENTS = {
    "refund": [
        "please refund my money back",
        "I want a refund for the double charge",
        "money back now, refund please",
        "refund the order, charged twice",
        "charged twice, money back",
    ],
    "bug": [
        "the app crashes on start",
        "error screen when I log in",
        "app crashes after the update",
        "login error again",
        "crashes and error messages",
    ],
    "spam": [
        "win a prize click here",
        "lottery winner click now",
        "free prize, click the link",
        "you are a lottery winner",
        "click to claim your prize",
    ],
}


def fitted(labels=("refund", "bug", "spam")):
    documents = [doc for label in labels for doc in DOCUMENTS[label]]
    targets = [label for label in labels for _ in DOCUMENTS[label]]
    return build_pipeline(calibrated=False).fit(documents, targets)


def terms_for(pipeline, document: str, shown_text: str | None = None) -> tuple[str, list[str]]:
    tfidf = pipeline.named_steps["tfidf"]
    features = tfidf.transform([document])
    probabilities = pipeline.named_steps["classifier"].predict_proba(features)[0]
    best = int(probabilities.argmax())
    terms = local_explain.pushing_terms(
        features[0],
        best,
        local_explain.relative_weights(pipeline),
        tfidf.get_feature_names_out(),
        shown_text if shown_text is not None else document,
    )
    return str(pipeline.classes_[best]), terms


def test_the_words_that_point_to_the_label_are_named_as_written():
    label, terms = terms_for(fitted(), "Hello, the APP CRASHES every morning")
    assert label == "bug"
    assert terms and terms[0] in ("APP CRASHES", "CRASHES", "APP")
    assert all(term in "Hello, the APP CRASHES every morning" for term in terms)


def test_a_phrase_named_leaves_out_its_own_words():
    _, terms = terms_for(fitted(), "money back money back refund")
    words = [word for term in terms for word in term.lower().split()]
    assert len(words) == len(set(words)), terms


def test_words_only_in_field_names_are_not_quoted():
    # The model reads keys too ("refund" here is a field's name), but the screen shows only
    # values: a quote it cannot find there would be listed as "not found in the text".
    document = "refund charged twice"
    _, terms = terms_for(fitted(), document, shown_text="charged twice")
    assert terms and all("refund" not in term.lower() for term in terms)


def test_two_labels_work_from_one_row_of_weights():
    pipeline = fitted(labels=("refund", "spam"))
    assert pipeline.named_steps["classifier"].coef_.shape[0] == 1
    for document, expected in (("lottery prize click", "spam"), ("refund money back", "refund")):
        label, terms = terms_for(pipeline, document)
        assert label == expected
        assert terms and set(" ".join(terms).split()) <= set(document.split())


def test_the_rationale_says_what_was_found():
    assert local_explain.rationale("bug", ["crashes", "error"], ("refund", 0.083)) == (
        "Words that point to “bug”: “crashes”, “error”. Next most likely: “refund” at 8%."
    )
    assert local_explain.rationale("bug", [], None) == (
        "No single word points to “bug”; the wording as a whole does."
    )


def test_filler_torn_words_and_phrases_across_punctuation_are_not_named():
    pipeline = fitted()
    tfidf = pipeline.named_steps["tfidf"]
    vocabulary = list(tfidf.get_feature_names_out())
    weights = local_explain.relative_weights(pipeline)
    refund = list(pipeline.classes_).index("refund")

    def named(text: str, terms: list[str]) -> list[str]:
        # A document made of exactly these terms, each pushing for "refund".
        row = tfidf.transform([" ".join(terms)])
        for index, term in enumerate(vocabulary):
            weights[refund, index] = 1.0 if term in terms else weights[refund, index]
        return local_explain.pushing_terms(row[0], refund, weights, vocabulary, text)

    # "the" and "for the" are filler; "refund" stands whole only in the second text.
    assert named("I want the refund for the order", ["for the", "the", "refund"]) == ["refund"]
    assert named("The refund's status", ["refund"]) == []
    # "money back" across a full stop is not a phrase of the text; "charged" alone is.
    across = named("No money. Back then I was charged", ["money back", "charged"])
    assert "charged" in across
    assert all(" " not in term and "." not in term for term in across), across
