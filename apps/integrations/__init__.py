"""Outgoing signed webhooks and reconciliation against providers' own usage exports."""
