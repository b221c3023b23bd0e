"""halluc: measure and mitigate hallucination in vision-language models.

Kept import-free on purpose: ``halluc --help`` and ``halluc ls`` must start fast.
"""
__version__ = "0.1.0"
