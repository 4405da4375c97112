"""Word-boundary snapping for spans that no quantity grammar delimits (zero claims).

A zero claim's span is a noun phrase (`没有发生[行政复议]`); a small tagger often gets its edges a
character short (`政复议`, `政府信息公开的申`). Chinese has no spaces, but jieba knows where words
end: a decoded span is widened to the jieba words it touches, within its sentence.

Few spans need it (two in the 17 sample reports), but loading jieba's dictionary costs about a
second of CPU in every process that does, a second each worker process took from encoding. So jieba here
reads its word-frequency table from disk, word by word: a SQLite copy of its own table (every word, every
prefix at frequency 0, exactly as jieba builds it), made once per machine in `$GOVFACTS_CACHE/words/`. The
words are jieba's own, only the table is not held in memory.
"""
from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from govfacts.claims import NEGATION, sentence_bounds
from govfacts.paths import cache_root

_lock = threading.Lock()
_loaded: list = []  # the jieba tokenizer reading the table on disk, once made
_MISSING = object()


class DiskFreq:
    """jieba's word → frequency table as its tokenizer reads it (`in`, `[]`, `.get`), answered from SQLite;
    the words asked for are kept, so a sentence's substrings are looked up once."""

    def __init__(self, path: Path):
        self._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        self._seen: dict[str, object] = {}
        self._lock = threading.Lock()
        self.total = int(self._db.execute("SELECT v FROM meta WHERE k = 'total'").fetchone()[0])

    def get(self, word: str, default=None):
        hit = self._seen.get(word, _MISSING)
        if hit is _MISSING:
            with self._lock:
                row = self._db.execute("SELECT f FROM w WHERE k = ?", (word,)).fetchone()
            hit = self._seen[word] = None if row is None else row[0]
        return default if hit is None else hit

    def __contains__(self, word: str) -> bool:
        return self.get(word) is not None

    def __getitem__(self, word: str) -> int:
        hit = self.get(word)
        if hit is None:
            raise KeyError(word)
        return hit


def table_file() -> Path:
    """The SQLite copy of jieba's default dictionary for this jieba version (made on first use)."""
    import jieba

    path = cache_root() / "words" / f"jieba-{jieba.__version__}.sqlite"
    if not path.exists():
        build_table(path)
    return path


def build_table(path: Path) -> Path:
    """jieba's table (`Tokenizer.gen_pfdict` over its default dictionary) written to SQLite atomically."""
    import jieba

    path.parent.mkdir(parents=True, exist_ok=True)
    freq, total = jieba.Tokenizer.gen_pfdict(jieba.Tokenizer().get_dict_file())
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    db = sqlite3.connect(tmp)
    try:
        db.execute("CREATE TABLE w (k TEXT PRIMARY KEY, f INTEGER NOT NULL) WITHOUT ROWID")
        db.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL)")
        db.executemany("INSERT INTO w VALUES (?, ?)", freq.items())
        db.execute("INSERT INTO meta VALUES ('total', ?)", (str(total),))
        db.commit()
    finally:
        db.close()
    os.replace(tmp, path)
    return path


def _jieba():
    """A jieba tokenizer over the table on disk (its own in-memory load never runs)."""
    if not _loaded:
        with _lock:
            if not _loaded:
                import jieba

                tok = jieba.Tokenizer()
                tok.FREQ = DiskFreq(table_file())
                tok.total = tok.FREQ.total
                tok.initialized = True
                _loaded.append(tok)
    return _loaded[0]


def word_bounds(sentence: str) -> list[tuple[int, int]]:
    return [(s, e) for _, s, e in _jieba().tokenize(sentence)]


def snap_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened to whole jieba words of its sentence (never across a sentence end)."""
    a, b = sentence_bounds(text, start, end)
    s, e = start, end
    for ws, we in word_bounds(text[a:b]):
        ws, we = ws + a, we + a
        if ws < start < we:
            s = ws
        if ws < end < we:
            e = we
    return s, e


def may_be_zero_claim(text: str, start: int, end: int) -> bool:
    """Could [start, end), or any widening of it within its sentence, be kept as a zero claim? Only with a
    negation cue in its sentence before `end` (decoding keeps a free span only after such a cue,
    `decode.is_zero_claim_site`)."""
    a, _ = sentence_bounds(text, start, end)
    return bool(NEGATION.search(text, a, end))


def snap_free_spans(text: str, found, candidates, phrases=()) -> list:
    """Spans (start, end, label, score) that overlap no quantity candidate are snapped to words;
    fragments that then overlap are merged (label and score of the most confident one). A span that
    overlaps one of `phrases` (the rules' zero-claim phrases, whose bounds `hints.snap_to_phrases` gives
    it next) is left as it is: most zero claims are such, so most documents never need jieba. Nor is a
    fragment that no negation cue precedes (`行` of `行政行为`): decoding drops it whatever its bounds."""
    in_cand = [False] * (len(text) + 1)
    for s, e in list(candidates) + list(phrases):
        in_cand[s:e] = [True] * (e - s)
    out = []
    for s, e, lab, score in sorted(found):
        if not any(in_cand[s:e]) and may_be_zero_claim(text, s, e):
            s, e = snap_to_words(text, s, e)
        if out and s < out[-1][1]:
            ps, pe, plab, pscore = out[-1]
            best = (plab, pscore) if pscore >= score else (lab, score)
            out[-1] = (min(ps, s), max(pe, e), *best)
        else:
            out.append((s, e, lab, score))
    return out
