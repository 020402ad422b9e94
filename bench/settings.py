"""Bench-only settings: the product's base settings plus the naive DRF baseline route (bench/naive_urls.py)."""

from costportal.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.naive_urls"
