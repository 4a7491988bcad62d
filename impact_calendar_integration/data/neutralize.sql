-- A neutralized copy must never push to (or hold tokens of) real calendars.
DELETE FROM impact_calendar_credential;
UPDATE impact_calendar_account SET state = 'needs_reconnect', last_error = 'Database neutralized: reconnect to sync.';
-- links: sync/link_states.py, statement(NEUTRALIZED, "dirty") (tests/test_link_states.py checks it)
UPDATE impact_calendar_link SET state = 'paused' WHERE dirty;
-- a copy must not serve production's private feed URLs
DELETE FROM impact_calendar_feed;
-- nor the forms a copy was taken with (a provider's connect form may hold an encrypted app
-- password): every transient model of this addon, whichever providers it holds
DO $$
DECLARE
    form_table text;
BEGIN
    FOR form_table IN
        SELECT replace(m.model, '.', '_')
          FROM ir_model m
          JOIN ir_model_data d ON d.model = 'ir.model' AND d.res_id = m.id
         WHERE d.module = 'impact_calendar_integration' AND m.transient AND m.model LIKE 'impact.calendar.%'
    LOOP
        EXECUTE format('DELETE FROM %I', form_table);
    END LOOP;
END $$;
