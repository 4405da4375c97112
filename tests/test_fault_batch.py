"""A corpus with ~5 % bad files, the real console script killed with SIGKILL at random points, --resume.

Every good document's facts must come out exactly once (equal to an uninterrupted reference run)
and every bad file must be named in the errors output. The random kill points come from
GOVFACTS_FAULT_SEED (printed on failure) so a failing run can be replayed.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from govfacts.infer.batch import journal_path

EXE = Path(sys.executable).with_name("govfacts")


def _corpus(root: Path, samples: Path) -> tuple[set[str], set[str]]:
    """≥ 200 good reports (plain, GBK, UTF-16, HTML cut mid-page, a 0.6 MB one: 3 segments) and 11 bad files.

    The junk bytes are fixed (not drawn from the run's seed): random bytes that happen to start
    with FF FE are a UTF-16 byte-order mark, and the reader then accepts them as text."""
    rnd = random.Random(12345)
    texts = [p.read_text(encoding="utf-8") for p in sorted(samples.glob("*.txt"))]
    good, bad = set(), set()
    for i in range(200):
        base = texts[i % len(texts)]
        sub = root / f"batch{i % 4}"
        sub.mkdir(exist_ok=True)
        text = f"第{i}号\n" + base if i % 3 else base  # some differ, some are exact duplicates of a sample
        p = sub / f"r{i:03d}.txt"
        if i % 25 == 7:
            p.write_bytes(text.encode("gbk", "ignore"))
        elif i % 25 == 11:
            p.write_bytes(text.encode("utf-16"))
        elif i % 25 == 13:
            p = p.with_suffix(".html")
            paras = "".join(f"<p>{line}</p>" for line in text.split("\n")[:12])
            p.write_text(f"<html><head><title>年报</title></head><body><div class='nav'>首页</div>{paras}<p>共受理申请",
                         encoding="utf-8")  # cut off mid-page: the visible text is still a document
        else:
            p.write_text(text, encoding="utf-8")
        good.add(str(p))
    big = root / "batch2" / "r100-big.txt"  # valid text, 0.6 MB: cut into segments (infer.api.MAX_SEGMENT_CHARS)
    reps = 600_000 // len(texts[0].encode("utf-8")) + 1
    big.write_text((texts[0] + "\n") * reps, encoding="utf-8")
    assert big.stat().st_size >= 600_000
    good.add(str(big))
    junk = {
        "binary.txt": bytes(rnd.randrange(256) for _ in range(5000)),
        "scan.pdf": b"%PDF-1.4\n" + bytes(rnd.randrange(256) for _ in range(3000)),
        "empty.txt": b"",
        "blank.txt": b" \n\t\n   \n",
        "undecodable.txt": bytes([0x80, 0xFF, 0xFE, 0x81, 0x30]) * 400,
        "high-bytes.txt": b"\x80" + bytes(rnd.choice([0x80, 0xFF, 0xA0, 0xFE]) for _ in range(3000)),
        "cut-head.html": b"<html><head><title>x</title><script>var a = '",
        "cut-style.htm": b"<!DOCTYPE html><html><head><meta charset='utf-8'><style>body{color:red",
        "nul-inside.txt": texts[1].encode()[:3000] + b"\x00\x01\x02\x00" * 20 + texts[1].encode()[3000:],
        "utf8-cut-mid-char.txt": _cut_mid_char(texts[2].encode("utf-8")),  # the reader is strict: undecodable
        "bom-utf16-odd.txt": b"\xff\xfe" + "共受理申请".encode("utf-16-le") + b"\x00",
    }
    for i, (name, data) in enumerate(junk.items()):
        p = root / f"batch{i % 4}" / f"x-{name}"
        p.write_bytes(data)
        bad.add(str(p))
    (root / "batch0" / "MANIFEST.tsv").write_text("file\tagency\n", encoding="utf-8")  # skipped, not an error
    return good, bad


def _cut_mid_char(data: bytes) -> bytes:
    """UTF-8 bytes cut inside the last multi-byte character (a truncated download)."""
    i = len(data) - 1
    while not 0x80 <= data[i] <= 0xBF:
        i -= 1
    return data[:i]


def _by_doc(path: Path) -> dict[str, list[dict]]:
    out = defaultdict(list)
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            out[rec["path"]].append(rec)
    return out


def _cmd(corpus: Path, out: Path, errs: Path, *extra: str) -> list[str]:
    return [str(EXE), "extract", str(corpus), "-o", str(out), "--model", "rules", "--errors", str(errs), "-q", *extra]


def _kill_at_random(cmd: list[str], out: Path, delay: float) -> bool:
    """Start `cmd`, SIGKILL it after `delay` s; True if it was killed (not already finished).

    Its child processes (--workers) must not outlive it for more than a few seconds."""
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.returncode != -signal.SIGKILL:  # it finished on its own just before the signal
            return False
        _, alive = psutil.wait_procs(children, timeout=8)
        assert not alive, f"processes outlived the killed run: {[c.pid for c in alive]}"
        return True
    return False


@pytest.mark.parametrize("workers", [0, 2])
def test_kill_and_resume_keeps_every_fact_exactly_once(samples, tmp_path, workers):
    assert EXE.exists(), f"console script {EXE} missing (pip install -e .)"
    seed = int(os.environ.get("GOVFACTS_FAULT_SEED", time.time_ns() % 1_000_000))
    rnd = random.Random(seed)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    good, bad = _corpus(corpus, samples)
    n = len(good) + len(bad)
    assert n >= 200 and 0.04 <= len(bad) / n <= 0.06

    ref, ref_err = tmp_path / "ref.jsonl", tmp_path / "ref-errors.jsonl"
    par = ["--workers", str(workers)]  # 0: this process (auto would take workers for this corpus size)
    t0 = time.monotonic()
    res = subprocess.run(_cmd(corpus, ref, ref_err, *par), capture_output=True, text=True, timeout=120)
    ref_secs = time.monotonic() - t0
    assert res.returncode == 1, res.stderr  # exit 1: some files failed
    reference = _by_doc(ref)
    ref_errors = {json.loads(line)["path"]: json.loads(line)["reason"] for line in ref_err.read_text("utf-8").splitlines()}
    assert set(ref_errors) == bad, f"seed {seed}"
    assert set(reference) <= good and len(reference) >= len(good) - 5  # a few reports may hold no fact
    assert len(reference[str(corpus / "batch2" / "r100-big.txt")]) > 200

    out, errs = tmp_path / "facts.jsonl", tmp_path / "errors.jsonl"
    kills = []
    for _ in range(2):  # killed, resumed and killed again, then resumed to the end
        delay = rnd.uniform(0.15, 0.85) * ref_secs
        extra = (["--resume"] if kills else []) + par
        had_journal = journal_path(out).exists()
        if _kill_at_random(_cmd(corpus, out, errs, *extra), out, delay):
            kills.append(round(delay, 2))
            # output is atomic: none, or (killed after writing it, before exiting) the complete one
            assert not out.exists() or _by_doc(out) == reference, f"seed {seed}: partial output after a kill"
            if had_journal:  # a first kill may land in start-up, before the journal is opened
                assert journal_path(out).exists() or out.exists(), f"seed {seed}: the journal must survive a kill"
    res = subprocess.run(_cmd(corpus, out, errs, "--resume", *par), capture_output=True, text=True, timeout=120)
    assert res.returncode == 1, res.stderr
    assert not journal_path(out).exists()
    assert kills, f"seed {seed}: the runs finished before any kill (reference took {ref_secs:.1f} s)"

    got = _by_doc(out)
    assert set(got) == set(reference), f"seed {seed}, kills at {kills}"
    for path, facts in reference.items():
        assert got[path] == facts, f"seed {seed}, kills at {kills}: {path} differs"  # same facts, once each
    errors = {json.loads(line)["path"]: json.loads(line)["reason"] for line in errs.read_text("utf-8").splitlines()}
    assert errors == ref_errors
    for p in bad:
        assert Path(p).name in res.stderr or p in errors  # named on stderr by the resumed run or journalled
    reasons = " | ".join(errors.values())
    for word in ("binary", "empty file", "undecodable", "broken PDF", "no text content"):
        assert word in reasons


@pytest.mark.parametrize("workers", [0, 2])
def test_kills_more_frequent_than_a_long_document_still_finish(samples, tmp_path, workers):
    """Killed again and again, each time sooner than the 2 MB report inside the corpus takes, the run
    still advances (a long document is journalled part by part, short ones a few at a time, in worker
    processes too) and the final output equals an uninterrupted run's. With workers the kills stop once one
    has landed inside the big report with its parts journalled; the run is then resumed to the end."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    texts = {p.name: p.read_text(encoding="utf-8") for p in sorted(samples.glob("*.txt"))}
    big_text = texts["gov-pingtan-2021.txt"] + "\n"
    (corpus / "a-big.txt").write_text(big_text * (2_000_000 // len(big_text.encode("utf-8")) + 1), encoding="utf-8")
    assert (corpus / "a-big.txt").stat().st_size >= 2_000_000
    for name, text in texts.items():
        (corpus / f"b-{name}").write_text(text, encoding="utf-8")
    one = tmp_path / "one"
    one.mkdir()
    (one / "r.txt").write_text(texts["hrss-zhengzhou-2017.txt"], encoding="utf-8")

    def run(src, out, *extra):
        t0 = time.monotonic()
        res = subprocess.run([str(EXE), "extract", str(src), "-o", str(out), "--model", "rules", "-q", *extra],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        return time.monotonic() - t0

    par = ["--workers", str(workers)]  # 0: this process (auto would take workers for this corpus size)
    start = run(one, tmp_path / "one.jsonl", *par)  # start-up (worker processes included) and one short report
    ref = tmp_path / "ref.jsonl"
    whole = run(corpus, ref, *par)
    interval = start + 0.4 * max(0.0, whole - start)  # well short of the big report's share of the run
    out = tmp_path / "facts.jsonl"
    cmd = [str(EXE), "extract", str(corpus), "-o", str(out), "--model", "rules", "-q"]
    cmd += par
    big = str(corpus / "a-big.txt")
    kills, inside, finished = 0, 0, False
    for attempt in range(30):
        if not _kill_at_random(cmd + (["--resume"] if attempt else []), out, interval):
            finished = True
            break
        kills += 1
        if out.exists():  # output is atomic: killed after writing it, before exiting, it is the complete one
            assert _by_doc(out) == _by_doc(ref), "partial output after a kill"
            finished = True
            break
        if not journal_path(out).exists():  # killed in start-up (a loaded machine): nothing was done, nothing lost
            continue
        recs = [json.loads(line) for line in journal_path(out).read_text(encoding="utf-8").splitlines() if line]
        mine = [r for r in recs if r["path"] == big]
        inside += bool(mine) and all("part" in r for r in mine)  # killed with some parts of the big report kept
        if workers and inside:  # the workers' parts reached the journal: finish without kills (keeps the suite short)
            subprocess.run(cmd + ["--resume"], capture_output=True, timeout=300, check=True)
            finished = True
            break
    assert finished, f"no run finished in 30 attempts, each killed after {interval:.1f} s (whole run {whole:.1f} s)"
    assert kills and inside, f"{kills} kills, {inside} inside the big report (interval {interval:.1f} s, whole {whole:.1f} s)"
    assert _by_doc(out) == _by_doc(ref)
