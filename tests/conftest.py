import functools
from pathlib import Path

import yaml

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"


@pytest.fixture(scope="session")
def samples() -> Path:
    return SAMPLES


def sample_text(doc_id: str) -> str:
    return (SAMPLES / f"{doc_id}.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """ONNX exports of the test models go to a temporary cache, not the user's ~/.cache/govfacts
    (set in the environment, so CLI subprocesses and Ray workers see it too)."""
    import os

    old = os.environ.get("GOVFACTS_CACHE")
    os.environ["GOVFACTS_CACHE"] = str(tmp_path_factory.mktemp("govfacts-cache"))
    yield
    if old is None:
        os.environ.pop("GOVFACTS_CACHE", None)
    else:
        os.environ["GOVFACTS_CACHE"] = old


@pytest.fixture(scope="session")
def docs() -> dict:
    """The labelled corpus by doc_id (`corpus_docs`), for tests that read it."""
    return corpus_docs()


@functools.lru_cache(maxsize=1)
def corpus_docs() -> dict:
    """The labelled corpus by doc_id, read once per test session (tests only read it)."""
    from govfacts.annotations import load_corpus

    return load_corpus(ROOT / "annotations")


TRAIN_IDS = ["hrss-jilin-province-2014", "hr-dongguan-2015", "gov-pingtan-2024"]
DEV_IDS = ["gov-pingtan-2013a", "gov-pingtan-2012"]


def build_tiny_tagger(out_dir: Path, steps: int = 400, train=TRAIN_IDS, dev=DEV_IDS, seed: int = 0) -> Path:
    """Fine-tune a 1-layer char BERT (hidden 32) for `steps` steps on real reports: a weak tagger
    that finds some spans and misses others, as a calibration subject."""
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from govfacts.train.finetune import finetune
    from govfacts.train.vocab import build_tokenizer

    docs = corpus_docs()
    base = out_dir / "base"
    tok = build_tokenizer([docs[i].text for i in list(train) + list(dev)], base)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id or 0)
    BertForMaskedLM(cfg).save_pretrained(base)
    tok.save_pretrained(base)
    splits = out_dir / "splits.yaml"
    splits.write_text(yaml.safe_dump({"train": list(train), "dev": list(dev), "test": []}), encoding="utf-8")
    return finetune(None, {"base_model": str(base), "annotations": str(ROOT / "annotations"), "splits": str(splits),
                           "output_dir": str(out_dir / "tagger"), "epochs": 50, "max_steps": steps,
                           "batch_size": 8, "lr": 3e-3, "head_lr": 1e-2, "max_len": 128, "stride": 32,
                           "num_threads": 1, "progress": False, "max_minutes": 5, "eval_batch_size": 32,
                           "warmup_ratio": 0.05, "seed": seed})


@pytest.fixture(scope="session")
def tiny_tagger(tmp_path_factory) -> Path:
    """The one trained test model of the session (1 layer, hidden 32, 400 steps on three real reports):
    tests that change a model's files work on a copy of it."""
    return build_tiny_tagger(tmp_path_factory.mktemp("tiny"))


# End-to-end files that spend most of their time waiting (a Label Studio server starting, Ray, killed
# subprocesses) run first, so that with `-n 2 --dist loadfile` (scripts/test.sh) the other worker
# runs the rest of the suite meanwhile.
SLOW_FIRST = ("test_studio_e2e.py", "test_ray_engine.py", "test_fault_batch.py")


def pytest_collection_modifyitems(session, config, items):
    def rank(item):
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order inside each file is kept


# -- tokenizers of three kinds (character, WordPiece, byte-level BPE) for window and alignment tests --------
@pytest.fixture(scope="session")
def char_tok(tmp_path_factory):
    from govfacts.train.vocab import build_tokenizer

    return build_tokenizer([d.text for d in list(corpus_docs().values())[:3]], tmp_path_factory.mktemp("chartok"))


@pytest.fixture(scope="session")
def wordpiece_tok():
    """A plain BERT WordPiece tokenizer: merges digits, drops whitespace, lowercases, has [UNK]s."""
    from transformers import BertTokenizerFast

    toks = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "共", "受", "理", "申", "请", "宗", "，", "。", "其", "中",
            "网", "上", "年", "14", "10", "##0", "##5", "2015", "%"]
    return BertTokenizerFast(vocab={t: i for i, t in enumerate(toks)})


@pytest.fixture(scope="session")
def byte_tok():
    """A byte-level BPE without merges: three tokens per Chinese char, all with the same offsets."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["共受理申请14宗"], trainers.BpeTrainer(
        vocab_size=259, special_tokens=["<pad>", "<s>", "</s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")
