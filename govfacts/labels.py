"""The label contract as data: loaded once from configs/labels.yaml, everything else derived."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from xml.sax.saxutils import quoteattr

import yaml

from govfacts.paths import CONFIGS

# A fixed palette; cycles if labels are added. Label Studio writes a selected label's name in white on
# its colour, so every colour keeps a contrast ratio of at least 4.5 against white (tests/test_labels.py).
_COLOURS = ["#c62828", "#2e7d32", "#1565c0", "#bf5700", "#6a1b9a", "#00796b", "#ad1457", "#5b7f00",
            "#00838f", "#8d5524", "#7f0000", "#6d6d00", "#1a237e", "#c2185b", "#5e35b1", "#33691e",
            "#a0522d", "#546e7a", "#8a6d00", "#2f6f62", "#7b1fa2", "#37474f", "#b23c17"]


@dataclass(frozen=True)
class Label:
    name: str
    meaning: str
    units: tuple[str, ...]
    aggregate: str = "top"  # govfacts summarize: top (highest-confidence claim) or sum


@dataclass(frozen=True)
class LabelSet:
    version: str
    labels: tuple[Label, ...]

    @property
    def names(self) -> list[str]:
        return [lab.name for lab in self.labels]

    @property
    def bio_tags(self) -> list[str]:
        """IOB2 tag list: O first, then B-/I- per label in contract order."""
        tags = ["O"]
        for name in self.names:
            tags += [f"B-{name}", f"I-{name}"]
        return tags

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.bio_tags))

    @property
    def label2id(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.bio_tags)}

    def get(self, name: str) -> Label:
        for lab in self.labels:
            if lab.name == name:
                return lab
        raise KeyError(name)

    @lru_cache(maxsize=256)
    def refusing(self, unit: str) -> frozenset[str]:
        """The labels whose contract units do not include `unit` (a classifier, `unit_key` form): a
        numeric claim counted in `亿元` is no RESPONSE_RATE, one in `人次` no DOCUMENTS_ISSUED."""
        return frozenset(lab.name for lab in self.labels if unit not in lab.units)

    def colours(self) -> dict[str, str]:
        """A fixed colour per label (Label Studio, report pages); the palette cycles if labels are added."""
        return {name: _COLOURS[i % len(_COLOURS)] for i, name in enumerate(self.names)}

    def studio_config(self) -> str:
        """The Label Studio labeling config (XML) for span labelling of `data.text`."""
        lines = ['<View>', '  <Labels name="label" toName="text">']
        colours = self.colours()
        for lab in self.labels:
            lines.append(f'    <Label value={quoteattr(lab.name)} background="{colours[lab.name]}" '
                         f'hint={quoteattr(lab.meaning)}/>')
        lines += ['  </Labels>', '  <Text name="text" value="$text" granularity="symbol"/>', '</View>']
        return "\n".join(lines)

    def markdown_table(self) -> str:
        rows = ["| label | what is counted | units |", "|---|---|---|"]
        rows += [f"| {lab.name} | {lab.meaning} | {', '.join(lab.units)} |" for lab in self.labels]
        return "\n".join(rows)


def load_labels(path: Path | str | None = None) -> LabelSet:
    data = yaml.safe_load(Path(path or CONFIGS / "labels.yaml").read_text(encoding="utf-8"))
    labels = tuple(Label(d["name"], d["meaning"], tuple(str(u) for u in d.get("units", ())), str(d.get("aggregate", "top")))
                   for d in data["labels"])
    bad = [lab.name for lab in labels if lab.aggregate not in ("top", "sum")]
    if bad:
        raise ValueError(f"labels.yaml: aggregate must be top or sum ({', '.join(bad)})")
    names = [lab.name for lab in labels]
    if len(set(names)) != len(names):
        raise ValueError("labels.yaml: duplicate label names")
    return LabelSet(str(data.get("version", "")), labels)


@lru_cache(maxsize=1)
def default_labels() -> LabelSet:
    return load_labels()
