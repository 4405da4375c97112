"""The character tokenizer: one token per character, whatever the text, also after reloading."""
import json

import pytest

from govfacts.train.vocab import SPECIALS, build_tokenizer, corpus_texts, gb2312_chars, load_tokenizer

from .conftest import SAMPLES

STRINGS = [
    "平潭综合实验区2023年共收到政府信息公开申请1136件，同比增长15.2%。",
    "政府資訊公開工作年度報告：受理申請１２３件（含網上申請）",  # traditional + full-width digits
    "ＡＢＣ！＂＃～　全角\u3000空格",
    "  leading spaces\tand tabs\n\nand newlines\r\nCRLF\u2028LS\x0bVT\u00a0NBSP",
    "emoji 😀❤️ rare 𠀀𪚥 private \ue000 combining e\u0301 ﹏",
    "literal specials [CLS] [SEP] [MASK] [PAD] [UNK] stay characters",
    "〔2023〕12号《条例》【注】……——·“引号”‘单’",
    "0123456789 abcXYZ ~!@#$%^&*()_+-=[]{}|;':\",./<>?`\\",
    "",
    " ",
    "\n",
]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("chartok")
    build_tokenizer(corpus_texts(sorted(SAMPLES.glob("gov-pingtan-201*.txt"))[:3]), out)
    return out


@pytest.fixture(scope="module", params=["built", "auto"])
def tok(request, tok_dir, tmp_path_factory):
    if request.param == "built":
        return build_tokenizer(corpus_texts(sorted(SAMPLES.glob("gov-pingtan-201*.txt"))[:3]),
                               tmp_path_factory.mktemp("again"))
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(tok_dir))


@pytest.mark.parametrize("text", STRINGS)
def test_one_token_per_character(tok, text):
    enc = tok(text, return_offsets_mapping=True)
    ids = enc["input_ids"]
    assert len(ids) == len(text) + 2
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    assert [tuple(o) for o in enc["offset_mapping"][1:-1]] == [(i, i + 1) for i in range(len(text))]
    assert enc["attention_mask"] == [1] * len(ids)


def test_whitespace_is_a_real_token(tok):
    text = "a \t\u3000\xa0b\n\r\u2028c"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    space, nl = tok.convert_tokens_to_ids([" ", "\n"])
    assert ids == [tok.convert_tokens_to_ids("a"), space, space, space, space, tok.convert_tokens_to_ids("b"),
                   nl, nl, nl, tok.convert_tokens_to_ids("c")]
    assert tok.unk_token_id not in ids


def test_unknown_characters_take_one_position(tok):
    text = "申请😀𠀀\ue000件"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert ids[2:5] == [tok.unk_token_id] * 3
    assert tok.unk_token_id not in (ids[0], ids[1], ids[-1])


def test_vocabulary_contents(tok):
    vocab = tok.get_vocab()
    assert [vocab[s] for s in SPECIALS] == list(range(len(SPECIALS)))
    assert len(gb2312_chars()) == 6763
    for ch in "资訊開發報告％，。、；：？！“”‘’（）《》〔〕【】…—·～ＡａA~\u3001\u300a":
        assert ch in vocab, ch
    assert len(tok) == len(vocab) == len(set(vocab.values())) and max(vocab.values()) == len(vocab) - 1
    assert "\t" not in vocab and "\u3000" not in vocab  # folded into " " by the normalizer


def test_literal_special_token_text_is_split(tok):
    ids = tok("[MASK]", add_special_tokens=False)["input_ids"]
    assert len(ids) == 6 and tok.mask_token_id not in ids


def test_autotokenizer_round_trip(tok_dir):
    from transformers import AutoTokenizer

    built = load_tokenizer(tok_dir)
    auto = AutoTokenizer.from_pretrained(str(tok_dir))
    assert (auto.pad_token, auto.unk_token, auto.cls_token, auto.sep_token, auto.mask_token) == tuple(SPECIALS)
    assert (auto.pad_token_id, auto.unk_token_id, auto.cls_token_id, auto.sep_token_id, auto.mask_token_id) == (
        0, 1, 2, 3, 4)
    assert auto.get_vocab() == built.get_vocab()
    text = STRINGS[0] + "\n" + STRINGS[1]
    assert auto(text)["input_ids"] == built(text)["input_ids"]
    assert auto.decode(auto(text)["input_ids"], skip_special_tokens=True) == text
    batch = auto(["一二三", "一"], padding=True)
    assert batch["input_ids"][1] == [2, auto.convert_tokens_to_ids("一"), 3, 0, 0]
    assert batch["attention_mask"][1] == [1, 1, 1, 0, 0]
    conf = json.loads((tok_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert conf["mask_token"] == "[MASK]" and conf["split_special_tokens"] is True


def test_corpus_chars_come_first_and_texts_read(tmp_path):
    (tmp_path / "a.txt").write_text("\ufeff䶵䶵甲", encoding="utf-8")  # U+4DB5: outside GB2312
    (tmp_path / "b.md").write_text("ignored", encoding="utf-8")
    texts = corpus_texts(sorted(tmp_path.iterdir()))
    assert texts == ["䶵䶵甲"]
    vocab = build_tokenizer(texts, tmp_path / "tok").get_vocab()
    assert vocab["䶵"] < vocab["甲"] < 10  # most frequent corpus char first, right after specials/whitespace
    assert (tmp_path / "tok" / "tokenizer.json").exists()
