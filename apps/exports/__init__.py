"""Exports for finance systems: the ERP CSV and the FinOps FOCUS 1.2 CSV."""
