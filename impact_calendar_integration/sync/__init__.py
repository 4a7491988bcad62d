"""Pure-Python sync core: provider clients, OAuth, payload mapping, retry policy, token vault.

Nothing under this package imports ``odoo``: the repository's pytest suite runs it on a machine
without Odoo, against loopback emulators of the providers' services.
"""
