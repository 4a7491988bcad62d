"""A throwaway schema on the PostgreSQL this machine runs, holding the outbox table as Odoo
creates it, for tests and benchmarks of the claim logic without Odoo."""

import contextlib
import os
import uuid

import psycopg2
import psycopg2.extensions

DSN = os.environ.get("IMPACT_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")

# Mirrors the columns the ORM creates for impact.calendar.link (models/impact_calendar_link.py).
LINK_TABLE_DDL = """
CREATE TABLE impact_calendar_link (
    id serial PRIMARY KEY,
    event_ref integer NOT NULL,
    event_id integer,
    user_id integer NOT NULL,
    account_id integer,
    external_id varchar,
    external_calendar varchar,
    generation integer DEFAULT 0,
    pushed_hash varchar,
    dirty boolean DEFAULT true,
    change_seq integer DEFAULT 1,
    state varchar NOT NULL DEFAULT 'pending',
    attempts integer DEFAULT 0,
    next_try timestamp,
    last_error varchar,
    first_failed_at timestamp,
    last_push_at timestamp,
    claimed_until timestamp,
    claim_token varchar,
    create_sent boolean DEFAULT false,
    wait_reason varchar,
    claim_pid integer,
    UNIQUE (event_ref, user_id)
);
-- Mirrors impact.calendar.change (models/impact_calendar_change.py).
CREATE TABLE impact_calendar_change (
    id serial PRIMARY KEY,
    event_ref integer,
    user_id integer,
    kind varchar NOT NULL
);
"""


def connect(schema, isolation=psycopg2.extensions.ISOLATION_LEVEL_REPEATABLE_READ):
    """A connection like Odoo's: REPEATABLE READ, search_path on the test schema."""
    conn = psycopg2.connect(DSN, options=f"-c search_path={schema}")
    conn.set_isolation_level(isolation)
    return conn


@contextlib.contextmanager
def outbox_schema():
    schema = "impact_test_" + uuid.uuid4().hex[:12]
    admin = psycopg2.connect(DSN)
    admin.autocommit = True
    with admin.cursor() as cr:
        cr.execute(f"CREATE SCHEMA {schema}")
        cr.execute(f"SET search_path = {schema}")
        cr.execute(LINK_TABLE_DDL)
    try:
        yield schema
    finally:
        with admin.cursor() as cr:
            cr.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def insert_links(schema, count, accounts=1):
    conn = connect(schema)
    with conn, conn.cursor() as cr:
        cr.execute(
            """INSERT INTO impact_calendar_link (event_ref, event_id, user_id, account_id)
               SELECT n, n, 1 + n %% %(accounts)s, 1 + n %% %(accounts)s FROM generate_series(1, %(count)s) n""",
            {"count": count, "accounts": accounts},
        )
    conn.close()
