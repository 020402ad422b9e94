from tests.integrations.receiver import webhook_receiver  # noqa: F401  (the fixture)
