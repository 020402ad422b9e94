"""Organizations, members and roles, cost centers and API keys."""
