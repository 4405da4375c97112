"""The `govfacts` command line (the top layer: it may import every other part of govfacts)."""
from govfacts.cli.main import app, main

__all__ = ["app", "main"]
