-- Evidence files (佐证材料, issue 11; registry/evidence.py): photos and PDFs uploaded to a hazard,
-- a round of rectification or an inspection record. The bytes live on disk, content-addressed by
-- their SHA-256 under HAZMON_EVIDENCE_DIR; a row here says what they are, where they belong
-- (and so who may read them: `site_id`, the scope) and who uploaded them. Uploads to a hazard or
-- its rectification are `evidence` events of the hazard; to an inspection, audit_log lines.
CREATE TABLE evidence (
    id               bigserial PRIMARY KEY,
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes       bigint NOT NULL CHECK (size_bytes > 0),
    media_type       text NOT NULL,
    filename         text NOT NULL DEFAULT '',
    note             text NOT NULL DEFAULT '',
    site_id          int NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    hazard_id        bigint REFERENCES hazards (id) ON DELETE CASCADE,
    rectification_id bigint REFERENCES rectifications (id) ON DELETE CASCADE,
    inspection_id    bigint REFERENCES inspection_records (id) ON DELETE CASCADE,
    uploaded_by      text NOT NULL,
    uploaded_by_user int REFERENCES users (id) ON DELETE SET NULL,
    uploaded_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(rectification_id, inspection_id) <= 1),
    CHECK (hazard_id IS NOT NULL OR inspection_id IS NOT NULL)
);
CREATE INDEX evidence_hazard_idx ON evidence (hazard_id);
CREATE INDEX evidence_inspection_idx ON evidence (inspection_id);
CREATE INDEX evidence_sha_idx ON evidence (sha256);
