-- Uploaded images, content-addressed: the id is the lower-case hex SHA-256 of the stored
-- (re-encoded, metadata-free) bytes, so every instance serves every image and backups hold
-- them. Images are immutable; who uploaded what is recorded per upload.

CREATE TABLE images (
    id           text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png', 'image/gif')),
    bytes        bytea NOT NULL,
    width        integer NOT NULL CHECK (width > 0),
    height       integer NOT NULL CHECK (height > 0),
    -- The thumbnail (≤ 360 px wide); NULL when the image itself is that narrow.
    thumb        bytea,
    thumb_type   text CHECK (thumb_type IN ('image/jpeg', 'image/png')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((thumb IS NULL) = (thumb_type IS NULL))
);

-- Every upload: who, from where, when (the same image may be uploaded by many).
CREATE TABLE image_uploads (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    image_id   text NOT NULL REFERENCES images (id),
    user_id    bigint NOT NULL REFERENCES users (id),
    ip         text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX image_uploads_user_idx ON image_uploads (user_id, created_at DESC);
CREATE INDEX image_uploads_image_idx ON image_uploads (image_id);
