-- A neutralized copy must never push to (or hold tokens of) real calendars.
DELETE FROM impact_calendar_credential;
UPDATE impact_calendar_account SET state = 'needs_reconnect', last_error = 'Database neutralized: reconnect to sync.';
UPDATE impact_calendar_link SET state = 'paused' WHERE dirty;
-- a copy must not serve production's private feed URLs
DELETE FROM impact_calendar_feed;
-- nor the connect forms a copy was taken with (one may hold an encrypted app password)
DELETE FROM impact_calendar_caldav_wizard;
DELETE FROM impact_calendar_disconnect;
