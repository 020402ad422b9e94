"""costportal: what a company's LLM usage costs, who caused it, and how to bill it back."""

from costportal.celery import app as celery_app

__all__ = ("celery_app",)
