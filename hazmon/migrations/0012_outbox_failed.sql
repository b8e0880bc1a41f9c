-- An outbox row the notifier will not deliver: its payload is not a notification (wrong
-- types, missing keys: `last_error` says which), or its retry policy gave up on it. Such a row
-- is settled once (`failed_at`) instead of being retried forever; clear `failed_at` and set
-- `next_attempt_at = now()` to send it again once the cause is fixed (notify/outbox.py).
ALTER TABLE outbox
    ADD COLUMN failed_at timestamptz,
    ADD CONSTRAINT outbox_delivered_or_failed CHECK (delivered_at IS NULL OR failed_at IS NULL);

DROP INDEX outbox_pending_idx;
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
