"""Settings modules: `base` with environment-driven values, `test` and `production` overrides."""
