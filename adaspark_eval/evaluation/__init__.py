"""Evaluation runs through lmms-eval: data check, evaluation, summary (``runner``, ``summary``)."""
