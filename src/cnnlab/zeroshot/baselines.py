"""Baselines for zero-shot classification on the same split as the models of Ba et al. (2015).

- :class:`RidgeTextToWeights`: the "linear regression" baseline of Ba et al. (Sec. 5, following
  Elhoseiny, Saleh & Elgammal, ICCV 2013): one linear classifier per seen class fitted in closed
  form (ridge regression of +-1 one-vs-rest targets on standardised image features), then a
  closed-form ridge map from TF-IDF to those weights. An unseen class's classifier is that map
  applied to its text.
- :class:`CCAJointSpace`: nearest class description in a joint space learned by regularised
  canonical correlation analysis (Hotelling 1936; the regularised form of Hardoon, Szedmak &
  Shawe-Taylor 2004) between each seen training image's features and its class's TF-IDF vector. An
  image is scored against a class by the cosine similarity of the two projections.

Both see only seen-class images and text, and both take penultimate features (N, D).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cnnlab.errors import ConfigError, InputShapeError


def _standardise(x: np.ndarray):
    mean, std = x.mean(0), x.std(0)
    return mean, np.where(std > 1e-6, std, 1.0)


def _check(text, labels, feats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    text, feats = np.asarray(text, np.float64), np.asarray(feats, np.float64)
    labels = np.asarray(labels, np.int64)
    if feats.ndim != 2 or len(feats) != len(labels):
        raise InputShapeError(f"baselines need features (N, D) with one label per row; got "
                              f"features {feats.shape} and {len(labels)} labels")
    if len(labels) == 0 or labels.min() < 0 or labels.max() >= len(text):
        raise ConfigError(f"labels must index the {len(text)} seen-class descriptions")
    return text, labels, feats


@dataclass
class RidgeTextToWeights:
    """Closed-form linear text -> classifier-weights regression (Elhoseiny et al. 2013 as a baseline
    in Ba et al. 2015). `alpha_w`: ridge on the seen classifiers; `alpha_t`: on the text map."""

    # chosen like the models' settings, on held-out seen classes (ResNet-18 features): AUC 0.734
    # at (100, 1.0) against 0.704 at (1.0, 0.1); a baseline is only informative when it is tuned
    alpha_w: float = 100.0
    alpha_t: float = 1.0
    state: dict = field(default_factory=dict, repr=False)

    def fit(self, text, labels, feats) -> "RidgeTextToWeights":
        """Fit on seen classes: `text` (S, V), `labels` (N,) in 0..S-1, `feats` (N, D)."""
        text, labels, feats = _check(text, labels, feats)
        mean, std = _standardise(feats)
        x = np.hstack([(feats - mean) / std, np.ones((len(feats), 1))])     # bias column
        y = 2.0 * np.eye(len(text))[labels] - 1.0                             # (N, S) +-1 targets
        w = np.linalg.solve(x.T @ x + self.alpha_w * np.eye(x.shape[1]), x.T @ y).T   # (S, D+1)
        # dual form: V (vocabulary) is usually far larger than S (seen classes)
        gram = text @ text.T + self.alpha_t * np.eye(len(text))
        m = text.T @ np.linalg.solve(gram, w)                                 # (V, D+1)
        self.state = {"mean": mean, "std": std, "map": m}
        return self

    def scores(self, text, feats) -> np.ndarray:
        """Scores (N, K) of images against K classes given by their text (K, V)."""
        s = self.state
        x = np.hstack([(np.asarray(feats, np.float64) - s["mean"]) / s["std"],
                       np.ones((len(feats), 1))])
        return (x @ (np.asarray(text, np.float64) @ s["map"]).T).astype(np.float32)


@dataclass
class CCAJointSpace:
    """Regularised CCA between image features and class TF-IDF (Hardoon et al. 2004); zero-shot by
    the nearest class description (cosine) in the `dim`-dimensional joint space."""

    dim: int = 16
    reg: float = 1e-2      # ridge added to each covariance, relative to its mean variance
    state: dict = field(default_factory=dict, repr=False)

    @staticmethod
    def _inv_sqrt(c: np.ndarray, reg: float) -> np.ndarray:
        c = c + reg * np.trace(c) / len(c) * np.eye(len(c))
        vals, vecs = np.linalg.eigh(c)
        return (vecs / np.sqrt(np.maximum(vals, 1e-12))) @ vecs.T

    def fit(self, text, labels, feats) -> "CCAJointSpace":
        """Fit on seen classes: `text` (S, V), `labels` (N,) in 0..S-1, `feats` (N, D)."""
        text, labels, feats = _check(text, labels, feats)
        # text vectors span at most S dims: work in the coordinates of their row space (S << V)
        t_mean = text[labels].mean(0)
        _, sv, vt = np.linalg.svd(text - t_mean, full_matrices=False)
        basis = vt[sv > 1e-8 * max(sv.max(), 1e-12)]                        # (R, V)
        x_mean = feats.mean(0)
        x = feats - x_mean
        t = (text - t_mean) @ basis.T                                          # (S, R)
        tz = t[labels]                                                          # (N, R) paired rows
        n = len(x)
        wx = self._inv_sqrt(x.T @ x / n, self.reg)
        wt = self._inv_sqrt(tz.T @ tz / n, self.reg)
        u, _, vh = np.linalg.svd(wx @ (x.T @ tz / n) @ wt)
        k = min(self.dim, u.shape[1], vh.shape[0])
        self.state = {"x_mean": x_mean, "t_mean": t_mean, "basis": basis,
                      "px": wx @ u[:, :k], "pt": wt @ vh[:k].T}
        return self

    def scores(self, text, feats) -> np.ndarray:
        """Cosine similarities (N, K) of images and class descriptions in the joint space."""
        s = self.state
        zx = (np.asarray(feats, np.float64) - s["x_mean"]) @ s["px"]
        zt = ((np.asarray(text, np.float64) - s["t_mean"]) @ s["basis"].T) @ s["pt"]
        zx /= np.linalg.norm(zx, axis=1, keepdims=True) + 1e-12
        zt /= np.linalg.norm(zt, axis=1, keepdims=True) + 1e-12
        return (zx @ zt.T).astype(np.float32)


BASELINES = {"ridge": RidgeTextToWeights, "cca": CCAJointSpace}
