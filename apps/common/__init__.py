"""Pieces every app shares: money, tenant-scoped managers and API base classes, health checks."""
