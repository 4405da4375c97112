"""Character-level tokenizer: every character of the input is exactly one token.

Facts are character spans, so the tagger needs token i+1 == character i (after [CLS]) with no
subword merging and no dropped whitespace. Whitespace is kept as real tokens: a length-preserving
normalizer folds line breaks to "\\n" and every other whitespace character to " ".
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SPACE, NEWLINE = " ", "\n"
# Python's whitespace set (str.isspace) split into line breaks and the rest.
_WHITESPACE = [chr(c) for c in range(0x3100) if chr(c).isspace()]
_LINEBREAKS = [c for c in _WHITESPACE if c in "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"]
_BLANKS = [c for c in _WHITESPACE if c not in _LINEBREAKS]
COMMON_SYMBOLS = "％，。、；：？！“”‘’（）《》〔〕【】…—·"


def _char_class(chars: Iterable[str]) -> str:
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in chars) + "]"


def gb2312_chars() -> list[str]:
    """GB2312 level 1 and 2 hanzi, in code order (rows 0xB0–0xF7, cells 0xA1–0xFE)."""
    out = []
    for hi in range(0xB0, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                out.append(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:  # unassigned cells at the end of row 0xD7
                pass
    return out


def traditional_forms(chars: Iterable[str]) -> list[str]:
    """OpenCC s2t form of each character, so raw traditional-script reports stay in vocabulary."""
    import opencc

    conv = opencc.OpenCC("s2t")
    out = []
    for c in chars:
        t = conv.convert(c)
        if len(t) == 1 and t != c:
            out.append(t)
    return out


def base_alphabet() -> list[str]:
    """Characters every tokenizer gets whatever the corpus: hanzi, ASCII, full-width, punctuation."""
    gb = gb2312_chars()
    ascii_ = [chr(c) for c in range(0x20, 0x7F)]
    fullwidth = [chr(c) for c in range(0xFF01, 0xFF5F)]
    cjk_punct = [chr(c) for c in range(0x3000, 0x3040)]
    return gb + traditional_forms(gb) + ascii_ + fullwidth + cjk_punct + list(COMMON_SYMBOLS)


def build_vocab(corpus_texts: Iterable[str]) -> dict[str, int]:
    """Specials, whitespace tokens, corpus characters (most frequent first), then the base alphabet."""
    counts: Counter[str] = Counter()
    for text in corpus_texts:
        counts.update(text)
    corpus_chars = [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    vocab: dict[str, int] = {}
    for tok in [*SPECIALS, SPACE, NEWLINE, *corpus_chars, *base_alphabet()]:
        if len(tok) == 1 and tok.isspace() and tok not in (SPACE, NEWLINE):
            continue  # folded away by the normalizer, would never be produced
        vocab.setdefault(tok, len(vocab))
    return vocab


def _backend(vocab: dict[str, int]) -> Tokenizer:
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(_char_class(_LINEBREAKS)), NEWLINE),
        normalizers.Replace(Regex(_char_class(_BLANKS)), SPACE),
    ])
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tok.decoder = decoders.Fuse()
    return tok


def build_tokenizer(corpus_texts: Iterable[str], out_dir: str | Path) -> PreTrainedTokenizerFast:
    """Build the character tokenizer over `corpus_texts` plus the base alphabet and save it to `out_dir`."""
    vocab = build_vocab(corpus_texts)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=_backend(vocab),
        pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
        # A literal "[MASK]" in a report must still be six characters, six tokens.
        split_special_tokens=True,
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out_dir)
    return tok


def load_tokenizer(path: str | Path) -> PreTrainedTokenizerFast:
    """Load a tokenizer saved by `build_tokenizer` (local files only)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), local_files_only=True, trust_remote_code=False)


def corpus_texts(paths: Iterable[str | Path]) -> list[str]:
    """Read .txt files as UTF-8 (BOM tolerated); other suffixes are skipped."""
    return [Path(p).read_text(encoding="utf-8-sig") for p in paths if Path(p).suffix.lower() == ".txt"]
