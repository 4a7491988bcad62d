"""A folder of providers outside the addon's code, for the test that adds one without changing
any other file (``tests/test_toy_provider.py``): ``providers.discover`` imports ``toy/``."""
