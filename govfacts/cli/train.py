"""`govfacts train …`: build our own Chinese BERT (pretrain), the span tagger (finetune), and choose
fine-tuning recipes by cross-validation over agencies (cv)."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
import yaml

from govfacts.paths import CONFIGS
from govfacts.train.crossval import load_cv_settings
from govfacts.train.crossval import markdown as cv_markdown
from govfacts.train.crossval import reread as run_reread
from govfacts.train.crossval import reread_markdown
from govfacts.train.crossval import run as run_cv
from govfacts.train.finetune import finetune as run_finetune

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Pretrain the base model, fine-tune the tagger.")


def overrides(pairs: List[str]) -> dict:
    """`--set KEY=VALUE` pairs as settings overrides (each VALUE read as YAML)."""
    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


@app.command()
def pretrain(config: Path = typer.Option(CONFIGS / "pretrain.yaml", "--config", "-c"),
             set_: List[str] = typer.Option([], "--set", help="Override a config key: KEY=VALUE (YAML value)."),
             fresh: bool = typer.Option(False, "--fresh", help="Ignore an existing checkpoint.")) -> None:
    """Masked-LM pretraining with whole-word masking; resumes from the checkpoint in the output folder."""
    from govfacts.train.pretrain import pretrain as run  # imports torch: only for this command

    typer.echo(run(config, overrides(set_), resume=not fresh))


@app.command()
def finetune(config: Path = typer.Option(CONFIGS / "finetune.yaml", "--config", "-c"),
             set_: List[str] = typer.Option([], "--set", help="Override a config key: KEY=VALUE (YAML value)."),
             base: Optional[str] = typer.Option(None, "--base", help="Base checkpoint dir or hub name.")) -> None:
    """Fine-tune the token classifier on the train split; best epoch by dev seqeval F1."""
    over = overrides(set_)
    if base:
        over["base_model"] = base
    typer.echo(run_finetune(config, over))


@app.command()
def cv(config: Path = typer.Option(CONFIGS / "crossval.yaml", "--config", "-c"),
       set_: List[str] = typer.Option([], "--set", help="Override a config key: KEY=VALUE (YAML value)."),
       reread: List[str] = typer.Option([], "--reread", help="Read the kept fold models again with a tagger "
                                        "option changed: KEY=VALUE (YAML value), e.g. unhedged=true; no training.")) -> None:
    """Grouped k-fold cross-validation over agencies: every recipe × fold × seed fine-tuned and scored
    beside the rules on held-out agencies; resumes; summary in OUT_DIR/cv.md. With --reread, the fold
    models a run kept are read again with other tagger options, paired with their stored scores."""
    try:
        cfg = load_cv_settings(config, overrides(set_))
        if reread:
            typer.echo(reread_markdown(run_reread(cfg, overrides(reread), progress=lambda m: typer.echo(m, err=True))))
            return
    except (ValueError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)
    typer.echo(cv_markdown(run_cv(cfg, progress=lambda m: typer.echo(m, err=True))))
