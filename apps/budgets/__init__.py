"""Budgets per cost center or organization, threshold alerts, and change requests with approval."""
