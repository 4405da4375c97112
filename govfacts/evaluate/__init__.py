"""Evaluation runs: scores of extractors on held-out gold, written as JSON, Markdown, HTML and plots."""
