"""The TF-IDF + logistic-regression baseline every text classifier is reported beside.

A strong classical baseline on the same split tells whether a neural model earns its cost; it is fit
on the training split only and scored on the test split.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

BASELINE_NAME = "tfidf-logreg"
NGRAM_RANGE = (1, 2)
C = 10.0


def baseline_pipeline() -> Pipeline:
    """Word uni- and bigrams, sublinear TF; L2-regularised logistic regression (C=10, lbfgs)."""
    return make_pipeline(
        TfidfVectorizer(ngram_range=NGRAM_RANGE, sublinear_tf=True),
        LogisticRegression(C=C, max_iter=2000),
    )
