"""Run the model pipeline of project.yml: only the steps whose inputs or outputs changed.

    python scripts/pipeline.py status            # which steps are stale, and why
    python scripts/pipeline.py run [STEP ...]    # run stale steps (or the named ones, forced) in order
    python scripts/pipeline.py run --dry         # print the commands that would run

A step is stale when the sha256 of any of its deps or outputs differs from project.lock (files of a
folder dep are hashed one by one), or when it never ran. After a step succeeds its hashes are written to
project.lock, atomically. Later steps are re-checked after each run, so a changed model re-runs its
evaluation.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ROOT / "project.yml"
LOCK = ROOT / "project.lock"


def load_project(path: Path = PROJECT) -> dict[str, dict]:
    steps = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("steps") or {}
    for name, step in steps.items():
        missing = [k for k in ("cmd", "deps", "outputs") if k not in step]
        if missing:
            raise SystemExit(f"{path}: step {name!r} lacks {', '.join(missing)}")
    return steps


def file_hashes(paths: list[str], root: Path = ROOT) -> dict[str, str | None]:
    """sha256 of every file named or inside a named folder (None for a missing path)."""
    out: dict[str, str | None] = {}
    for rel in paths:
        p = root / rel
        files = sorted(f for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts) if p.is_dir() else [p]
        if p.is_dir() and not files or not p.exists():
            out[rel] = None
            continue
        for f in files:
            out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def read_lock(path: Path = LOCK) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_lock(lock: dict, path: Path = LOCK) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".project.lock.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(lock, fh, indent=1, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)


def why_stale(name: str, step: dict, lock: dict, root: Path = ROOT) -> list[str]:
    """Reasons the step must run again (empty: up to date)."""
    old = lock.get(name)
    if old is None:
        return ["never ran"]
    reasons = []
    for kind in ("deps", "outputs"):
        now = file_hashes(step[kind], root)
        before = old.get(kind, {})
        changed = sorted(k for k in set(now) | set(before) if now.get(k) != before.get(k))
        reasons += [f"{kind[:-1] if kind == 'deps' else 'output'} changed: {k}" for k in changed]
    if old.get("cmd") != step["cmd"]:
        reasons.append("command changed")
    return reasons


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="scripts/pipeline.py", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="action", required=True)
    sub.add_parser("status")
    run = sub.add_parser("run")
    run.add_argument("steps", nargs="*", help="only these steps (run even if up to date)")
    run.add_argument("--dry", action="store_true", help="print what would run")
    a = ap.parse_args(argv)
    steps = load_project()
    lock = read_lock()
    if a.action == "status":
        for name, step in steps.items():
            reasons = why_stale(name, step, lock)
            print(f"{name:10s} {'stale: ' + '; '.join(reasons[:3]) if reasons else 'up to date'}")
        return 0
    unknown = [s for s in a.steps if s not in steps]
    if unknown:
        ap.error(f"unknown step(s) {unknown}; steps: {', '.join(steps)}")
    for name, step in steps.items():
        if a.steps and name not in a.steps:
            continue
        reasons = ["asked for"] if a.steps else why_stale(name, step, lock)
        if not reasons:
            print(f"{name}: up to date")
            continue
        print(f"{name}: {reasons[0]} → {step['cmd']}", flush=True)
        if a.dry:
            continue
        r = subprocess.run(shlex.split(step["cmd"]), cwd=ROOT)
        if r.returncode:
            print(f"{name}: failed (exit {r.returncode}); project.lock not updated", file=sys.stderr)
            return r.returncode
        lock[name] = {"cmd": step["cmd"], "deps": file_hashes(step["deps"]), "outputs": file_hashes(step["outputs"])}
        write_lock(lock)
    return 0


if __name__ == "__main__":
    sys.exit(main())
