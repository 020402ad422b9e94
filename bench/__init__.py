"""The ingest benchmark (bench/ingest.py) and its bench-only naive baseline endpoint."""
