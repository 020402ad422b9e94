"""The cost dashboard: where the money goes, per organization, for every member."""
