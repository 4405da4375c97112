"""Typed records that flow through govfacts: documents, spans and facts."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

QUALIFIERS = ("exact", "approx", "more_than", "nearly")


@dataclass(frozen=True)
class Document:
    """A report as govfacts reads it; every offset in govfacts refers to `text`."""

    doc_id: str
    path: str
    text: str
    format: str = "txt"  # txt | html | pdf
    encoding: str = "utf-8"


@dataclass(frozen=True)
class Span:
    """A labelled character range [start, end) of a document text."""

    start: int
    end: int
    label: str
    text: str = ""
    score: float = 1.0


@dataclass(frozen=True)
class Quantity:
    """A normalised quantity expression: 22.4万余次 -> 224000, 次, more_than."""

    value: float
    unit: str
    qualifier: str = "exact"


@dataclass
class Fact:
    """One quantity claim of a report, as emitted by `govfacts extract`."""

    doc_id: str
    path: str
    metric: str
    value: Optional[float]
    unit: str
    qualifier: str
    text: str
    start: int
    end: int
    confidence: float
    agency: Optional[str] = None
    year: Optional[int] = None
    extractor: str = ""
    source: str = "prose"  # prose: a claim in running text; table: a cell of the template tables
    cell: Optional[str] = None  # the template cell key of a table fact (configs/tables.yaml)
    evidence: str = ""  # the sentence (prose) or table row (table) the fact stands in, as written
    evidence_start: int = -1
    evidence_end: int = -1

    def to_dict(self) -> dict[str, Any]:
        # every field is a str / number / None: a flat copy is `asdict` without its deep-copy cost
        return {name: getattr(self, name) for name in _FACT_FIELDS}

    def to_span(self) -> Span:
        """The fact as a scored span of its document (what scoring and Label Studio regions take)."""
        return Span(self.start, self.end, self.metric, self.text, self.confidence)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Fact":
        return cls(**{k: v for k, v in d.items() if k in _FACT_NAMES})


FACT_FIELDS = [f.name for f in fields(Fact)]
_FACT_NAMES = frozenset(FACT_FIELDS)


@dataclass
class ReadFailure:
    """A file that could not be turned into a document, with the reason in words."""

    path: str
    reason: str
    extra: dict = field(default_factory=dict)


_FACT_FIELDS = tuple(f.name for f in fields(Fact))
