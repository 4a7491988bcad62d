# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Waking the cron workers through one connection that the server process keeps.

Odoo's ``ir.cron._notifydb`` opens a connection to the ``postgres`` database for each wake-up and
closes it after (Odoo's pool never keeps connections to that database): a new PostgreSQL server
process, a password exchange and a teardown, each time. The push action is woken by every booking
commit, so ``models/ir_cron.py`` sends its wake-ups here instead: the same notification, through a
connection in autocommit that is made once per server process and made again if it was lost.

A trigger in the future (a retry's due time) is seen by Odoo's cron threads only at their next
poll, up to a minute later: ``notify_at`` wakes them at that time from a timer of this process.

A booking commit made while a push run of the same process is under way wakes no one: that run
takes the change, or wakes the cron threads once when it ends (``running``, ``covered``).
"""

import contextlib
import logging
import os
import threading
from datetime import datetime, timezone

import psycopg2
from psycopg2 import sql

from odoo import sql_db

from .compat import CRON_NOTIFY_CHANNEL, CRON_NOTIFY_FUNCTION

_logger = logging.getLogger(__name__)

_lock = threading.Lock()
_kept = {}  # os.getpid() -> connection: a forked worker never uses its parent's
_timers = {}  # (os.getpid(), dbname) -> [(naive UTC time, Timer)]: the wake-ups to come
_runs = {}  # (os.getpid(), dbname) -> [naive UTC time each run began]: push runs under way
LATE = 0.5  # seconds after the due time: the trigger's call_at must have passed on the database's clock


def notify(dbname):
    """Send ``ir.cron._notifydb``'s notification for ``dbname``. False if it could not be sent
    (the caller then does it Odoo's way, which reports the error)."""
    query = sql.SQL("SELECT {}(%s, %s)").format(sql.Identifier(CRON_NOTIFY_FUNCTION))
    with _lock:
        for _attempt in range(2):  # a kept connection may have been closed by the server
            try:
                with _connection().cursor() as cr:
                    cr.execute(query, (CRON_NOTIFY_CHANNEL, dbname))
            except psycopg2.Error as error:
                _logger.debug("cron wake-up connection lost (%s): connecting again", error)
                _drop()
                continue
            _logger.debug("cron workers notified")
            return True
    return False


@contextlib.contextmanager
def running(dbname, since):
    """Around a push run of this process: ``since``, the database's clock when it began (before
    Odoo's scheduler could drop a trigger for it). A run that commits left their wake-up to
    wakes the cron threads once when it ends: Odoo's scheduler does not look for triggers after
    a run by itself, and one made after the run's last look at the change log is still there."""
    key = (os.getpid(), dbname)
    run = [since, False]  # when it began; whether a commit left its wake-up to it
    with _lock:
        _runs.setdefault(key, []).append(run)
    try:
        yield
    finally:
        with _lock:
            _runs[key] = [other for other in _runs[key] if other is not run]
        if run[1] and not notify(dbname):
            _logger.warning("The cron workers of %s could not be woken after a push run", dbname)


def covered(dbname, at):
    """Whether a push run of this process that began at or before ``at`` (the database's clock)
    is under way. A commit whose trigger was made at ``at`` then need not wake every cron thread
    of the cluster: that run takes the change, or wakes them when it ends (``running``), and a
    trigger made after a run began outlives the run's clean-up (see the synchronizer's
    _drop_spent_triggers)."""
    with _lock:
        runs = [run for run in _runs.get((os.getpid(), dbname), ()) if run[0] <= at]
        for run in runs:
            run[1] = True
        return bool(runs)


def notify_at(dbname, at):
    """Wake the cron workers at ``at`` (naive UTC), unless a wake-up at that time or earlier is
    already pending in this process: a later one never hides a nearer one."""
    key = (os.getpid(), dbname)
    with _lock:
        pending = [(when, timer) for when, timer in _timers.get(key, ()) if timer.is_alive()]
        if any(when <= at for when, _timer in pending):
            _timers[key] = pending
            return
        delay = max(0.0, (at - datetime.now(timezone.utc).replace(tzinfo=None)).total_seconds()) + LATE
        timer = threading.Timer(delay, notify, (dbname,))
        timer.daemon = True
        _timers[key] = [*pending, (at, timer)]
    timer.start()


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
