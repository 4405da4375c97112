"""The map from a decoded span's model score to the confidence of its fact, P(fact right).

A span score (the weakest char's label mass) ranks spans but is not a probability: a fact the tagger
labels against the rules it reads is right less often than its score says, and a score of 0.9999 is
no surer than one of 0.999. Calibration (`govfacts.train.calibrate`) fits a logistic map over a few
features of each span on annotated documents and records it in the model's config.json as
`govfacts_confidence_map` ({"form": ..., "weights": [...]}); the 2-parameter Platt map of earlier
models (`govfacts_platt`: [a, b]) reads as the form `platt`.

Forms:
- `platt`: a·logit(s) + b (monotone in the score);
- `beta`: a·ln(s) − b·ln(1 − s) + c (beta calibration, Kull et al. 2017: the two tails bend apart);
- `beta-rules`: beta plus d·[a rules span of the same label overlaps the span] (models that read rule
  hints; a fact both extractors find is a different bet from one the tagger alone finds).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence, Union

import numpy as np

EPS = 1e-6  # scores are clipped to [EPS, 1 - EPS] before their logs

FORMS: dict[str, tuple[str, ...]] = {
    "platt": ("logit", "bias"),
    "beta": ("log_score", "log_doubt", "bias"),
    "beta-rules": ("log_score", "log_doubt", "bias", "rules_agree"),
}
# the weights under which each form is the identity (p = s), which fitting is pulled towards
IDENTITY = {"logit": 1.0, "log_score": 1.0, "log_doubt": 1.0, "bias": 0.0, "rules_agree": 0.0}


def feature_rows(features: Sequence[str], scores: Sequence[float], agrees: Sequence[bool]) -> np.ndarray:
    """[n, len(features)] design matrix of the spans with these scores and rule agreements."""
    s = np.clip(np.asarray(scores, dtype=np.float64), EPS, 1 - EPS)
    a = np.asarray(agrees, dtype=np.float64)
    cols = {"logit": lambda: np.log(s / (1 - s)), "log_score": lambda: np.log(s),
            "log_doubt": lambda: -np.log(1 - s), "bias": lambda: np.ones_like(s), "rules_agree": lambda: a}
    unknown = [f for f in features if f not in cols]
    if unknown:
        raise ValueError(f"unknown confidence-map feature(s) {unknown}; known: {sorted(cols)}")
    return np.stack([cols[f]() for f in features], axis=1) if len(s) else np.zeros((0, len(features)))


@dataclass(frozen=True)
class ConfidenceMap:
    """p = sigmoid(weights · features(score, rules agree)); `form` names the features (`FORMS`)."""

    form: str
    weights: tuple[float, ...]

    def __post_init__(self):
        if self.form not in FORMS:
            raise ValueError(f"unknown confidence-map form {self.form!r}; known: {sorted(FORMS)}")
        if len(self.weights) != len(FORMS[self.form]):
            raise ValueError(f"the {self.form} map takes {len(FORMS[self.form])} weights, got {len(self.weights)}")

    @property
    def features(self) -> tuple[str, ...]:
        return FORMS[self.form]

    def many(self, scores: Sequence[float], agrees: Sequence[bool]) -> np.ndarray:
        z = feature_rows(self.features, scores, agrees) @ np.asarray(self.weights, dtype=np.float64)
        return 1.0 / (1.0 + np.exp(-np.clip(z, -700, 700)))

    def __call__(self, score: float, agrees: bool = False) -> float:
        return float(self.many([score], [agrees])[0])

    def to_config(self) -> dict:
        return {"form": self.form, "weights": [float(w) for w in self.weights]}

    @classmethod
    def from_config(cls, value: Union[dict, Sequence[float], None]) -> "ConfidenceMap | None":
        """A map from config.json: {"form", "weights"}, or a Platt pair [a, b]; None/empty → None."""
        if not value:
            return None
        if isinstance(value, dict):
            return cls(str(value["form"]), tuple(float(w) for w in value["weights"]))
        return cls("platt", tuple(float(w) for w in value))

    @classmethod
    def identity(cls, form: str) -> "ConfidenceMap":
        return cls(form, tuple(IDENTITY[f] for f in FORMS[form]))


def rules_agree(start: int, end: int, label: str, rule_spans: Iterable) -> bool:
    """Does a rules span (objects with start, end, label) of `label` overlap [start, end)?"""
    return any(r.label == label and r.start < end and start < r.end for r in rule_spans)
