"""Usage records: ingest, pricing of each call, cost summaries and re-rating."""
