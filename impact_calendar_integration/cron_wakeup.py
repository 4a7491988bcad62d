# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Waking the cron workers through one connection that the server process keeps.

Odoo's ``ir.cron._notifydb`` opens a connection to the ``postgres`` database for each wake-up and
closes it after (Odoo's pool never keeps connections to that database): a new PostgreSQL server
process, a password exchange and a teardown, each time. The push action is woken by every booking
commit, so ``models/ir_cron.py`` sends its wake-ups here instead: the same notification, through a
connection in autocommit that is made once per server process and made again if it was lost.
"""

import logging
import os
import threading

import psycopg2
from psycopg2 import sql

from odoo import sql_db
from odoo.addons.base.models.ir_cron import ODOO_NOTIFY_FUNCTION

_logger = logging.getLogger(__name__)

CHANNEL = "cron_trigger"  # the channel Odoo's cron threads listen on
_lock = threading.Lock()
_kept = {}  # os.getpid() -> connection: a forked worker never uses its parent's


def notify(dbname):
    """Send ``ir.cron._notifydb``'s notification for ``dbname``. False if it could not be sent
    (the caller then does it Odoo's way, which reports the error)."""
    query = sql.SQL("SELECT {}(%s, %s)").format(sql.Identifier(ODOO_NOTIFY_FUNCTION))
    with _lock:
        for _attempt in range(2):  # a kept connection may have been closed by the server
            try:
                with _connection().cursor() as cr:
                    cr.execute(query, (CHANNEL, dbname))
            except psycopg2.Error as error:
                _logger.debug("cron wake-up connection lost (%s): connecting again", error)
                _drop()
                continue
            _logger.debug("cron workers notified")
            return True
    return False


def _connection():
    cnx = _kept.get(os.getpid())
    if cnx is None or cnx.closed:
        _dbname, info = sql_db.connection_info_for("postgres")
        cnx = psycopg2.connect(**info)
        cnx.autocommit = True
        _kept[os.getpid()] = cnx
    return cnx


def _drop():
    cnx = _kept.pop(os.getpid(), None)
    if cnx is not None:
        cnx.close()  # also for a connection the server has closed: psycopg2 does not raise
