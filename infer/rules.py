"""Rule baseline: lexicon + patterns for the 23 labels and for zero claims.

It is the baseline the tagger must beat, the pre-annotator for new reports and a test oracle. It
works on the normalised view (simplified, half-width, PDF lines joined) and maps spans back to raw
offsets. Cue lexicon and weights live in configs/rules.yaml.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

try:  # the regular-expression parser of the standard library (`sre_parse` before Python 3.11)
    import re._constants as _c
    import re._parser as _sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as _c
    import sre_parse as _sre_parse

import yaml

from govfacts.claims import SENT_ENDS
from govfacts.labels import LabelSet, default_labels
from govfacts.paths import CONFIGS
from govfacts.quantity import QUANTITY_RX, unit_key
from govfacts.records import Span
from govfacts.textview import TextView, build_view

NAME = "rules"
VERSION = "0.1.0"

ZERO_NUM_RX = re.compile(r"(?:为|是|均为)(?P<num>零|0)(?![0-9.%])")
NONE_REACH = 4  # an out-of-scope cue vetoes only a quantity it directly qualifies
LIST_STRONG = 7.0  # a list item with a cue scoring at least this keeps its own label
_CLAUSE = "，,、：:"
_SITE_RX = re.compile(r"网站|门户|网上|信息网|政务网|公开栏|公报")  # a clause naming these posts on a site, not new media
_TRAINED_RX = re.compile(r"[^，,。；;！？!?\n]{0,24}?(?:参加|开展|进行|接受)[^，,。；;！？!?\n]{0,20}?培训")

# Zero claims: a negation cue, then within the same clause the metric noun phrases it denies.
NEGATION_RX = re.compile(r"(?:没有|沒有|均未|未|无|暂不|不存在|不)")
ZERO_NOUNS: list[tuple[str, str]] = [
    (r"(?:政府)?信息公开行政复议(?:案件)?|行政复议案件|行政复议|复议", "RECONSIDERATIONS"),
    (r"行政诉讼案件|行政诉讼|诉讼案件|诉讼", "LAWSUITS"),
    (r"(?:政府)?信息公开(?:的)?申请|依申请公开(?:政府信息)?(?:的)?申请|信息公开申请|公开申请", "APPLICATIONS_RECEIVED"),
    (r"信息处理费|检索费|复制费|收费|费用", "FEES"),
    (r"(?:政府信息公开)?(?:举报|申诉)(?:案件)?", "COMPLAINTS"),
]
_ZERO_RX = [(re.compile(p), lab) for p, lab in ZERO_NOUNS]
_ZERO_VERBS = re.compile(r"^(?:发生|收到|收取|产生|出现|接到|有|存在|受理|涉及|因)")


@dataclass(frozen=True)
class Cue:
    rx: re.Pattern
    label: str
    weight: float


def first_chars(rx: re.Pattern) -> Optional[frozenset[str]]:
    """Every character a match of `rx` can begin with, or None where that is not plain (an empty match,
    a class range, an anchor, case folding): a cue whose first characters do not occur in a text cannot
    match there, so the rules skip it without running it (most cues are words)."""
    if rx.flags & re.IGNORECASE:
        return None
    try:
        return _first(_sre_parse.parse(rx.pattern, rx.flags))
    except Exception:  # an unforeseen parse tree: run the cue everywhere
        return None


def _first(seq) -> Optional[frozenset[str]]:
    if not len(seq):
        return None  # matches the empty string
    op, av = seq[0]
    if op is _c.LITERAL:
        return frozenset(chr(av))
    if op is _c.SUBPATTERN:
        return _first(av[-1])
    if op is _c.BRANCH:
        firsts = [_first(branch) for branch in av[1]]
        return None if any(f is None for f in firsts) else frozenset().union(*firsts)
    if op is _c.IN and all(o is _c.LITERAL for o, _ in av):
        return frozenset(chr(a) for _, a in av)
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:
        return _first(av[2])
    return None


def rules_fingerprint(path: str | None = None, labels: LabelSet | None = None) -> str:
    """First 8 hex digits of the sha256 of the rule code version, configs/rules.yaml and the label
    contract: part of the rules' version and of every rule-hinted tagger's, so editing the lexicon
    changes the id of whatever reads it."""
    labels = labels or default_labels()
    h = hashlib.sha256(VERSION.encode("utf-8"))
    h.update(Path(path or CONFIGS / "rules.yaml").read_bytes())
    h.update(repr([(lab.name, lab.units) for lab in labels.labels]).encode("utf-8"))
    return h.hexdigest()[:8]


@lru_cache(maxsize=4)
def _rules_config(path: str | None = None) -> dict:
    return yaml.safe_load(Path(path or CONFIGS / "rules.yaml").read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> tuple[list[Cue], re.Pattern, re.Pattern, re.Pattern]:
    cfg = _rules_config(path)
    cues = []
    for label, by_weight in cfg["cues"].items():
        for weight, words in by_weight.items():
            for w in words:
                w = str(w)
                cues.append(Cue(re.compile(w[3:] if w.startswith("re:") else re.escape(w)), label, float(weight)))
    issue = re.compile("|".join(map(re.escape, cfg["issue_verbs"])))
    publish = re.compile("|".join(map(re.escape, cfg["publish_verbs"])))
    not_before = re.compile("(?:" + "|".join(map(re.escape, cfg["not_before"])) + r")[了为达约共]?\s*$")
    return cues, issue, publish, not_before


def follows_no_claim_word(text: str, start: int, path: str | None = None) -> bool:
    """True where a quantity at `start` follows a word (`not_before` in configs/rules.yaml: 第, 占, 同比,
    较上年 …) that makes it an ordinal, a share or a change: never a fact by the label contract, whatever
    extractor found it."""
    return bool(load_rules(path)[3].search(text[max(0, start - 6):start]))


def cue_words(path: str | None = None, min_weight: float = 4.0) -> dict[str, list[str]]:
    """The lexicon's cue words per label (NONE left out) of at least `min_weight`: phrasings a label is
    known to take, for mention replacement in fine-tuning."""
    cfg = _rules_config(path)
    return {label: [str(w) for weight, words in by_weight.items() if float(weight) >= min_weight for w in words
                    if not str(w).startswith("re:")]
            for label, by_weight in cfg["cues"].items() if label != "NONE"}


class RuleExtractor:
    """Finds labelled quantity spans in a document text with cue words and patterns."""

    name = NAME

    def __init__(self, labels: LabelSet | None = None, rules_path: str | None = None):
        self.labels = labels or default_labels()
        self.rules_path = rules_path
        self.cues, self.issue_rx, self.publish_rx, _ = load_rules(rules_path)
        self.fingerprint = rules_fingerprint(rules_path, self.labels)
        self.version = f"{VERSION}+{self.fingerprint}"
        self.units = {lab.name: set(lab.units) for lab in self.labels.labels}
        by_label: dict[str, list[str]] = {}
        for c in self.cues:
            by_label.setdefault(c.label, []).append(f"(?:{c.rx.pattern})")
        self.label_rx = {label: re.compile("|".join(ps)) for label, ps in by_label.items()}  # any cue of the label
        self._cues_by_first: dict[str, list[int]] = {}  # first character → the cues that can begin with it
        self._cues_anywhere: list[int] = []  # cues without plain first characters: always run
        for i, c in enumerate(self.cues):
            firsts = first_chars(c.rx)
            for ch in firsts or ():
                self._cues_by_first.setdefault(ch, []).append(i)
            if firsts is None:
                self._cues_anywhere.append(i)

    def cues_for(self, text: str) -> list[Cue]:
        """The cues that can match somewhere in `text` (in lexicon order): those that begin with one of its
        characters, and those whose first characters are not plain."""
        index = self._cues_by_first
        found = set(self._cues_anywhere)
        for ch in set(text):
            found.update(index.get(ch, ()))
        return [self.cues[i] for i in sorted(found)]

    # -- public API -----------------------------------------------------------------------------
    def spans(self, raw: str) -> list[Span]:
        """Labelled spans with offsets into `raw`, non-overlapping, sorted."""
        return self.spans_of_view(build_view(raw))

    def spans_many(self, texts) -> list[list[Span]]:
        return [self.spans(t) for t in texts]

    def spans_of_view(self, view: TextView) -> list[Span]:
        """`spans` of an already built view (offsets into `view.raw`)."""
        found = self._numeric(view) + self._zero_claims(view)
        found.sort(key=lambda s: (s.start, -(s.end - s.start)))
        out: list[Span] = []
        for s in found:
            if out and s.start < out[-1].end:
                continue
            out.append(s)
        return out

    # -- numeric claims -------------------------------------------------------------------------
    def _numeric(self, view: TextView) -> list[Span]:
        return [self._to_span(view, s, e, lab, sc) for s, e, lab, sc, _ in self._hits(view)
                if lab and lab != "NONE" and lab in self.units]

    def vetoed(self, view: TextView) -> list[tuple[int, int]]:
        """View [start, end) of the quantities an out-of-scope cue vetoes (`处置网络舆情[70多件]`,
        `共[五个]部分`): what the rules looked at and judged no claim (a hint for the tagger)."""
        return [(s, e) for s, e, lab, _, _ in self._hits(view) if lab == "NONE"]

    def _hits(self, view: TextView) -> list[list]:
        """[start, end, label or None or NONE, score, unit] of every quantity of the view (memoised)."""
        key = ("rule_hits", self.fingerprint)
        if key not in view.memo:
            view.memo[key] = self._find_hits(view)
        return view.memo[key]

    def _find_hits(self, view: TextView) -> list[list]:
        t = view.text
        hits: list[list] = []  # [start, end, label or None, score, unit]
        for m in QUANTITY_RX.finditer(t):
            unit = m.group("unit")
            key = unit_key(unit)
            if follows_no_claim_word(t, m.start(), self.rules_path):
                continue
            if t[m.end():m.end() + 1] in ("性", "年", "月", "日", "号"):
                continue
            quoted = m.start() > 0 and t[m.start() - 1] in "“\"「" or t[m.end():m.end() + 1] in ("“", "\"", "」")
            if quoted and not view.raw[slice(*view.to_raw(*m.span("num")))][:1].isdigit():  # as written (view: digits)
                continue  # 三个“100”行动, “三个一”机制: names and slogans, not counts
            label, score = self._label_for(t, m.start(), m.end(), key)
            hits.append([m.start(), m.end(), label, score, key])
        self._inherit_in_lists(t, hits)
        for m in ZERO_NUM_RX.finditer(t):
            label, score = self._label_for(t, m.start("num"), m.end("num"), None)
            if label:
                hits.append([m.start("num"), m.end("num"), label, score, ""])
        return hits

    def _inherit_in_lists(self, t: str, hits: list[list]) -> None:
        """In enumerations (`市级47期、宿城区28期、…`, `A类信息21条，B项目49条`) an item without a cue of its
        own takes the label of the item before it when the units agree."""
        for prev, cur in zip(hits, hits[1:]):
            gap = t[prev[1]:cur[0]]
            if (prev[2] and prev[2] != "NONE" and cur[4] == prev[4] and len(gap) <= 16
                    and not any(c in gap for c in SENT_ENDS) and (cur[2] is None or cur[3] < LIST_STRONG)
                    and re.search(r"[，,、；]", gap) and not re.search(r"其中|共|合计|总计", gap)
                    # an item that names its own metric keeps it (`访问量…次，被媒体报道或转发61次`)
                    and not any(rx.search(gap) for lab, rx in self.label_rx.items() if lab not in ("NONE", prev[2]))):
                cur[2], cur[3] = prev[2], prev[3] - 1

    def _label_for(self, t: str, start: int, end: int, unit: str | None) -> tuple[str | None, float]:
        sent_start = max((t.rfind(c, 0, start) for c in SENT_ENDS), default=-1) + 1
        lo = max(sent_start, start - 60)
        left = re.sub(r"[（(][^（()）]{0,30}[）)]", "", t[lo:start])  # asides like （含申请人主动撤回申请）
        clause_start = max((left.rfind(c) for c in _CLAUSE), default=-1) + 1
        right_end = end
        while right_end < len(t) and right_end - end < 14 and t[right_end] not in SENT_ENDS + _CLAUSE + "（(":
            right_end += 1
        right = t[end:right_end]
        scored: dict[str, float] = {}
        for cue in self.cues_for(left + right):
            for m in cue.rx.finditer(left):
                dist = len(left) - m.end()
                if cue.label == "NONE" and (dist > NONE_REACH or m.start() < clause_start):
                    continue
                s = cue.weight - 0.3 * dist + (3 if m.start() >= clause_start else 0)
                if s > scored.get(cue.label, -1e9):
                    scored[cue.label] = s
            m = cue.rx.search(right)
            if m and not (cue.label == "NONE" and m.start() > NONE_REACH):
                s = cue.weight + 3.5 - 0.3 * m.start() - (1.5 if cue.label == "POSTS_PUBLISHED" else 0)
                if s > scored.get(cue.label, -1e9):
                    scored[cue.label] = s
        if unit in self.units["TRAININGS"] and _TRAINED_RX.match(t, end):
            # `组织[300余人次]开展执法能力、应急技能等各类培训`: the people or sessions of a training named later
            scored["TRAININGS"] = max(scored.get("TRAININGS", -1e9), 7.0)
        clause = left[clause_start:]
        if "DOCUMENTS_ISSUED" in scored:
            issue, publish = self.issue_rx.search(clause), self.publish_rx.search(clause)
            if publish and (not issue or publish.start() < issue.start()):
                scored["POSTS_PUBLISHED"] = max(scored.get("POSTS_PUBLISHED", -1e9), scored.pop("DOCUMENTS_ISSUED"))
        if "SOCIAL_MEDIA_POSTS" in scored and "POSTS_PUBLISHED" in scored:
            # the channel the quantity's own clause names decides: `网站发布信息2082条，微信公众号推送信息270条`
            social = self.label_rx["SOCIAL_MEDIA_POSTS"].search(clause)
            site = _SITE_RX.search(clause)
            if social and not site:
                scored["SOCIAL_MEDIA_POSTS"] = max(scored["SOCIAL_MEDIA_POSTS"], scored["POSTS_PUBLISHED"] + 0.5)
            elif site and not social:
                scored["POSTS_PUBLISHED"] = max(scored["POSTS_PUBLISHED"], scored["SOCIAL_MEDIA_POSTS"] + 0.5)
            elif not social and not site and not re.search(r"网站|门户|网上", left):
                scored["SOCIAL_MEDIA_POSTS"] = max(scored["SOCIAL_MEDIA_POSTS"], scored["POSTS_PUBLISHED"] + 0.5)
        for label, s in sorted(scored.items(), key=lambda kv: kv[1], reverse=True):
            if label == "NONE":
                return "NONE", s
            if unit is None or unit in self.units.get(label, ()):
                return label, s
        return None, 0.0

    # -- zero claims ----------------------------------------------------------------------------
    def _zero_claims(self, view: TextView) -> list[Span]:
        t = view.text
        out = []
        for neg in NEGATION_RX.finditer(t):
            rest_end = neg.end()
            while rest_end < len(t) and rest_end - neg.end() < 30 and t[rest_end] not in SENT_ENDS + "，,":
                rest_end += 1
            window = t[neg.end():rest_end]
            if neg.group() == "不" and not window.startswith(("收费", "收取")):
                continue
            if neg.group() in ("无", "未") and not (_ZERO_VERBS.match(window) or any(r.match(window) for r, _ in _ZERO_RX)):
                continue
            taken: list[tuple[int, int]] = []
            for rx, label in _ZERO_RX:
                for m in rx.finditer(window):
                    s, e = neg.end() + m.start(), neg.end() + m.end()
                    if any(a < e and s < b for a, b in taken):
                        continue
                    if label == "FEES" and re.match(r"(?:标准|依据)", t[e:e + 2]):
                        continue
                    taken.append((s, e))
                    if label == "APPLICATIONS_RECEIVED" and t[s - 1:s] == "因":
                        continue  # `未因[申请]引发行政复议`: the cause of a denied case, not a denied application
                    out.append(self._to_span(view, s, e, label, 6.0))
        return out

    @staticmethod
    def _to_span(view: TextView, s: int, e: int, label: str, score: float) -> Span:
        rs, re_ = view.to_raw(s, e)
        conf = max(0.05, min(0.95, 0.5 + score / 20))
        return Span(rs, re_, label, view.raw[rs:re_], round(conf, 3))
