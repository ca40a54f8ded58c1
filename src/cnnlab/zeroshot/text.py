"""Text features of class descriptions: TF-IDF, as Ba et al. (ICCV 2015) use for Wikipedia articles.

An encoder is anything with ``fit(texts)``, ``transform(texts) -> (K, V) float32``, ``vocabulary``
(the V feature names), ``state()`` (a JSON-able dict) and a ``KIND`` string; :data:`ENCODERS` maps
kinds to classes so a saved run can rebuild its encoder (:func:`encoder_from_state`). A new text
encoder (e.g. sentence embeddings) is a new entry there.

``texts`` are always a ``{class name: article}`` mapping so that every error names its class. The
vocabulary and the IDF weights are fitted on seen-class text only; unseen text is only transformed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from cnnlab.errors import ConfigError, DataError


def _check_texts(texts: dict[str, str], what: str) -> None:
    if not isinstance(texts, dict) or not texts:
        raise DataError(f"{what}: expected a non-empty {{class name: description}} mapping; "
                        f"got {type(texts).__name__} {texts!r:.60}")
    empty = [name for name, t in texts.items() if not isinstance(t, str) or not t.strip()]
    if empty:
        raise DataError(f"{what}: class(es) {empty[:5]} have no description text (empty or "
                        f"whitespace only); give every class a non-empty article")


@dataclass
class TfidfEncoder:
    """TF-IDF (l2-normalised rows) with English stop words removed, fitted on seen-class text.

    `min_df` = 1 and no `max_features` cap by default: with ~160 training articles every word that
    a seen class uses can carry signal; `sublinear_tf` damps words repeated within one article.
    """

    KIND = "tfidf"
    min_df: int = 1
    max_features: int | None = None
    sublinear_tf: bool = True
    stop_words: str | None = "english"

    def __post_init__(self):
        self._vec = None

    def _vectorizer(self):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return TfidfVectorizer(min_df=self.min_df, max_features=self.max_features,
                               sublinear_tf=self.sublinear_tf, stop_words=self.stop_words,
                               dtype=np.float32)

    def fit(self, texts: dict[str, str]) -> "TfidfEncoder":
        """Fit vocabulary and IDF on `texts` (the seen classes only)."""
        _check_texts(texts, "fitting the text encoder")
        vec = self._vectorizer()
        try:
            vec.fit(list(texts.values()))
        except ValueError as e:   # sklearn's "empty vocabulary; perhaps ... only stop words"
            raise DataError(f"no usable word in the seen-class descriptions ({e}); the articles "
                            f"contain only stop words or punctuation") from None
        self._vec = vec
        return self

    @property
    def vocabulary(self) -> list[str]:
        self._need_fit()
        return list(self._vec.get_feature_names_out())

    @property
    def dim(self) -> int:
        return len(self.vocabulary)

    def _need_fit(self) -> None:
        if self._vec is None:
            raise ConfigError("the text encoder is not fitted; call fit() on seen-class text first")

    def transform(self, texts: dict[str, str], strict: bool = True) -> np.ndarray:
        """(K, V) float32 TF-IDF rows, one per class, in the mapping's order.

        A class whose text has no word in the vocabulary gets an all-zero row, i.e. no classifier:
        an error naming it (`strict`), else a warning.
        """
        self._need_fit()
        _check_texts(texts, "encoding descriptions")
        out = np.asarray(self._vec.transform(list(texts.values())).toarray(), dtype=np.float32)
        dead = [name for name, row in zip(texts, out) if not row.any()]
        if dead:
            msg = (f"description(s) of class(es) {dead[:5]} contain no word of the "
                   f"{out.shape[1]:,}-word vocabulary fitted on the seen classes; describe "
                   f"them with ordinary words (colours, shapes, habitat) that the training "
                   f"articles use")
            if strict:
                raise DataError(msg)
            warnings.warn(msg, stacklevel=2)
        return out

    def state(self) -> dict:
        """JSON-able state: settings, vocabulary (in column order) and IDF weights."""
        self._need_fit()
        return {"kind": self.KIND, "min_df": self.min_df, "max_features": self.max_features,
                "sublinear_tf": self.sublinear_tf, "stop_words": self.stop_words,
                "vocabulary": self.vocabulary, "idf": [float(v) for v in self._vec.idf_]}

    @classmethod
    def from_state(cls, state: dict) -> "TfidfEncoder":
        """Rebuild a fitted encoder from :meth:`state` without refitting."""
        enc = cls(min_df=state["min_df"], max_features=state["max_features"],
                  sublinear_tf=state["sublinear_tf"], stop_words=state["stop_words"])
        vec = enc._vectorizer()
        vec.vocabulary_ = {w: i for i, w in enumerate(state["vocabulary"])}
        vec.idf_ = np.asarray(state["idf"], dtype=np.float64)
        enc._vec = vec
        return enc


ENCODERS = {TfidfEncoder.KIND: TfidfEncoder}


def encoder_from_state(state: dict):
    """Rebuild any registered encoder from its saved state."""
    kind = state.get("kind")
    if kind not in ENCODERS:
        raise ConfigError(f"unknown text encoder {kind!r}; known: {sorted(ENCODERS)}")
    return ENCODERS[kind].from_state(state)
