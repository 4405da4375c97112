"""The annotator guide shows commands that exist: every `govfacts studio …` line of its shell blocks names
a real subcommand with real options (the e2e test runs the same commands against Label Studio)."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import typer.main

from govfacts.cli import app

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "annotator-guide.md"


def guide_commands() -> list[list[str]]:
    text = GUIDE.read_text(encoding="utf-8")
    cmds = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            for part in re.split(r"\s&\s|&&", line.split("  #")[0]):
                words = shlex.split(part, comments=True)
                if words[:3] == [".venv/bin/govfacts", "studio", words[2] if len(words) > 2 else ""] and len(words) > 2:
                    cmds.append(words[2:])
    return cmds


def test_guide_commands_exist_with_their_options():
    group = typer.main.get_command(app).commands["studio"]
    cmds = guide_commands()
    assert {c[0] for c in cmds} >= {"setup", "push", "pull", "retrain", "serve", "status"}
    for cmd in cmds:
        sub = group.commands.get(cmd[0])
        assert sub is not None, f"guide: no command studio {cmd[0]}"
        known = {o for p in sub.params for o in getattr(p, "opts", [])}
        unknown = [w for w in cmd[1:] if w.startswith("--") and w.split("=")[0] not in known]
        assert not unknown, f"guide: studio {cmd[0]} has no option {unknown}"


def test_guide_uses_the_port_variable():
    text = GUIDE.read_text(encoding="utf-8")
    assert "127.0.0.1:8080" not in text and "http://127.0.0.1:$LS_PORT" in text
    assert "LS_PORT" in (GUIDE.parents[1] / "scripts" / "start-label-studio.sh").read_text(encoding="utf-8")
