"""govfacts: structured quantity facts from Chinese government information-disclosure annual reports."""

__version__ = "0.1.0"
