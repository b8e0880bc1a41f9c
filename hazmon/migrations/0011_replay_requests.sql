-- Dead-letter replay as a request that an ingest worker carries out (`POST /dead-letters/replay`
-- and `hazmon dead-letters replay` write one and wait): the worker owns the rule state of its
-- series, so replayed readings are graded by it, as late data where they are older than what it
-- graded already. The worker works through the letters in chunks between its live batches,
-- keeping its place in `after_id` and the counts so far.
CREATE TABLE replay_requests (
    id                      bigserial PRIMARY KEY,
    requested_at            timestamptz NOT NULL DEFAULT now(),
    requested_by            text NOT NULL,
    reason                  text,
    state                   text NOT NULL DEFAULT 'pending'
                            CHECK (state IN ('pending', 'running', 'done', 'failed')),
    claimed_by              text,
    started_at              timestamptz,
    finished_at             timestamptz,
    after_id                bigint NOT NULL DEFAULT 0,
    replayed                int NOT NULL DEFAULT 0,
    still_refused           jsonb NOT NULL DEFAULT '{}'::jsonb,
    readings_stored         int NOT NULL DEFAULT 0,
    readings_already_stored int NOT NULL DEFAULT 0,
    error                   text
);
CREATE INDEX replay_requests_open_idx ON replay_requests (id) WHERE state IN ('pending', 'running');
