"""Reading reports (.txt in any common Chinese encoding, .html/.htm, .pdf) into one document text.

The text returned here is *the* document text: every offset govfacts emits refers to it, and
`govfacts text FILE` prints it. Only two things are changed from the bytes: the encoding is decoded
(and a BOM dropped) and CR LF / CR line ends become LF.
"""
from __future__ import annotations

import codecs
import re
from pathlib import Path

from govfacts.records import Document

TEXT_SUFFIXES = {".txt", ".text", ".md"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml", ".shtml"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES

_CJK = re.compile(r"[\u4e00-\u9fff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


class ReadError(Exception):
    """A report that cannot be read; the message names the file and what is wrong."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def read_document(path: str | Path) -> Document:
    """Read one report; raises ReadError with a clear reason for anything unusable."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ReadError(p, f"cannot open file ({e.strerror or e})") from e
    if not data.strip():
        raise ReadError(p, "empty file")
    suffix = p.suffix.lower()
    if suffix in PDF_SUFFIXES or data[:5] == b"%PDF-":
        text, fmt, enc = _pdf_text(p, data), "pdf", "pdf"
    elif suffix in HTML_SUFFIXES or _looks_like_html(data):
        raw, enc = decode_bytes(p, data, hint=_html_charset(data))
        text, fmt = html_to_text(raw), "html"
    else:
        text, enc = decode_bytes(p, data)
        fmt = "txt"
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise ReadError(p, f"no text content after reading the {fmt} file")
    return Document(doc_id=p.stem, path=str(p), text=text, format=fmt, encoding=enc)


def _looks_like_html(data: bytes) -> bool:
    head = data[:2048].lower()
    return b"<html" in head or b"<!doctype html" in head or (b"<body" in head and b"</" in head)


def _html_charset(data: bytes) -> str | None:
    m = re.search(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_-]+)""", data[:4096], re.I)
    return m.group(1).decode("ascii").lower() if m else None


def _chinese_score(text: str) -> float:
    """How much a decoded text looks like Chinese prose: CJK share minus control-character share."""
    if not text:
        return 0.0
    n = len(text)
    return len(_CJK.findall(text)) / n - 10 * len(_CONTROL.findall(text)) / n


def decode_bytes(path: str | Path, data: bytes, hint: str | None = None) -> tuple[str, str]:
    """Decode report bytes: BOM first, then strict UTF-8, then the best legacy Chinese encoding.

    Legacy candidates (GB18030 ⊃ GBK ⊃ GB2312, Big5, UTF-16 without BOM) are decoded strictly and
    scored; charset-normalizer breaks ties. A file that decodes under none of them, or whose best
    decoding is mostly control characters, is reported as binary/undecodable.
    """
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(enc), enc
            except UnicodeDecodeError as e:
                raise ReadError(path, f"has a {enc} byte-order mark but does not decode as {enc}: {e.reason}") from e
    if b"\x00" in data[:4096] and not _nul_pattern_utf16(data):
        raise ReadError(path, "binary file (NUL bytes), not a text report")
    candidates = []
    order = ["utf-8", "gb18030", "big5"]
    if _nul_pattern_utf16(data):  # UTF-16 without BOM decodes any even-length bytes: only when NULs say so
        order = ["utf-16-le", "utf-16-be"] if data[1::2].count(0) else ["utf-16-be", "utf-16-le"]
    if hint:
        order.insert(0, hint)
    for enc in order:
        try:
            text = data.decode(enc)
        except (UnicodeDecodeError, LookupError):
            continue
        if enc == "utf-8":
            return _check_text(path, text, enc), enc
        candidates.append((_chinese_score(text), enc, text))
    if not candidates and b"\x00" in data[:4096]:
        raise ReadError(path, "binary file (NUL bytes), not a text report")
    if not candidates:
        guess = _normalizer_guess(data)
        if guess:
            return _check_text(path, guess[1], guess[0]), guess[0]
        raise ReadError(path, "undecodable: not UTF-8, GB18030/GBK, Big5 or UTF-16 text")
    candidates.sort(key=lambda c: c[0], reverse=True)
    best = candidates[0]
    if hint and any(c[1] == hint and best[0] - c[0] < 0.02 for c in candidates):
        best = next(c for c in candidates if c[1] == hint)
        return _check_text(path, best[2], best[1]), best[1]
    if len(candidates) > 1 and abs(candidates[0][0] - candidates[1][0]) < 0.02:
        guess = _normalizer_guess(data)
        if guess and any(c[1] == guess[0] for c in candidates[:2]):
            best = next(c for c in candidates if c[1] == guess[0])
    return _check_text(path, best[2], best[1]), best[1]


def _nul_pattern_utf16(data: bytes) -> bool:
    """UTF-16 without BOM: ASCII digits and line ends put NULs on one byte parity; binary spreads them."""
    sample = data[:8192]
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    hi, lo = max(even, odd), min(even, odd)
    return hi >= 8 and hi >= 4 * lo and hi >= len(sample) // 40


def _normalizer_guess(data: bytes) -> tuple[str, str] | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data, cp_isolation=["gb18030", "big5", "utf_8", "utf_16"]).best()
    if best is None:
        return None
    return best.encoding.replace("_", "-"), str(best)


def _check_text(path: str | Path, text: str, enc: str) -> str:
    n = max(len(text), 1)
    if len(_CONTROL.findall(text)) / n > 0.01 or "\x00" in text:
        raise ReadError(path, f"binary file: decodes as {enc} only to control characters")
    return text.lstrip("\ufeff")


_BLOCK_TAGS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "section",
               "article", "ul", "ol", "dd", "dt", "blockquote", "pre", "hr"}
_DROP_TAGS = ["script", "style", "noscript", "iframe", "nav", "header", "footer", "aside", "form", "select",
              "button", "svg", "template", "head"]
_CHROME = re.compile(r"(^|[-_ ])(nav|navbar|menu|breadcrumb|crumb|footer|header|sidebar|share|toolbar|"
                     r"topbar|banner|copyright|pagination|location|position)([-_ ]|$)", re.I)


def html_to_text(html: str) -> str:
    """Visible text of a web page, one paragraph per line, without scripts, styles and navigation chrome."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "lxml")
    for tag in soup(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all(True):
        if tag.attrs is None:
            continue
        ident = " ".join(tag.get("class", []) or []) + " " + (tag.get("id") or "")
        if _CHROME.search(ident) and tag.name not in ("body", "html"):
            tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for td in soup.find_all(["td", "th"]):
        td.insert_after(" ")
    text = soup.get_text()
    lines = [re.sub(r"[ \t\u3000\xa0]+", " ", line).strip() for line in text.split("\n")]
    return "\n".join(line for line in lines if line)


def _pdf_text(path: Path, data: bytes) -> str:
    import pdfplumber
    from pdfminer.pdfparser import PDFSyntaxError

    try:
        with pdfplumber.open(path) as pdf:
            pages = [page.extract_text() or "" for page in pdf.pages]
    except (PDFSyntaxError, ValueError, KeyError, TypeError, AttributeError, OSError) as e:
        raise ReadError(path, f"broken PDF: {type(e).__name__}: {e}") from e
    except Exception as e:  # pdfminer raises many private exception types for damaged files
        raise ReadError(path, f"broken PDF: {type(e).__name__}: {e}") from e
    text = "\n".join(pages)
    if not text.strip():
        raise ReadError(path, f"PDF has no text layer ({len(pages)} pages, scanned images?): run OCR first")
    return text
