# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""One operation through ``ProviderClient.push``, the only path production code takes: tests
drive the clients as the synchronizer does. No Odoo import (pytest uses it too)."""

from ..sync.providers.base import CREATE, DELETE, UPDATE, Operation

KEY = "one"


def push_one(client, action, body=None, external_id=None, client_id=None):
    """The Outcome of pushing one operation."""
    operation = Operation(key=KEY, action=action, body=body, external_id=external_id, client_id=client_id)
    return client.push([operation])[KEY]


def push_create(client, body, client_id):
    return push_one(client, CREATE, body=body, client_id=client_id)


def push_update(client, external_id, body):
    return push_one(client, UPDATE, body=body, external_id=external_id)


def push_delete(client, external_id):
    return push_one(client, DELETE, external_id=external_id)
