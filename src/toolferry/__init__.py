"""toolferry: bring research tools to the data (GA4GH TES service and environment catalogue)."""

__version__ = "0.1.0"
