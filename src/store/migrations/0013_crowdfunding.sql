-- Crowdfunding: projects with 1..=5 rising goals and 0..=20 rewards, reviewed before they are
-- listed; backings (purpose 'backing' payments) with their reward unit and shipping; updates
-- and follows; and the settlement plan written before any of its refunds is sent.
-- Progress (raised_fen, backers, a reward's reserved/taken units) is kept exact by the
-- backing purpose inside the payment and refund transactions.

CREATE TABLE projects (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id      bigint NOT NULL REFERENCES users (id),
    title         text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 60),
    summary       text NOT NULL DEFAULT '' CHECK (char_length(summary) <= 200),
    story         text NOT NULL DEFAULT '' CHECK (char_length(story) <= 20000),
    cover_image   text REFERENCES images (id),
    images        text[] NOT NULL DEFAULT '{}' CHECK (cardinality(images) <= 9),
    deadline      timestamptz NOT NULL,
    surplus       text NOT NULL DEFAULT 'refund' CHECK (surplus IN ('refund', 'keep')),
    status        text NOT NULL DEFAULT 'draft'
                  CHECK (status IN ('draft', 'pending_review', 'rejected', 'live', 'succeeded', 'failed')),
    -- Bumped by every edit: a reviewer decides on the revision they saw.
    revision      integer NOT NULL DEFAULT 1,
    review_reason text,
    reviewed_by   bigint REFERENCES users (id),
    reviewed_at   timestamptz,
    submitted_at  timestamptz,
    -- When it went live (the list's "newest").
    published_at  timestamptz,
    -- Paid backings counted (paid before the deadline, while live) less their refunds.
    raised_fen    bigint NOT NULL DEFAULT 0 CHECK (raised_fen >= 0),
    -- People with money in: distinct backers whose counted backings are not all refunded.
    backers       integer NOT NULL DEFAULT 0 CHECK (backers >= 0),
    followers     integer NOT NULL DEFAULT 0 CHECK (followers >= 0),
    -- Settlement: the goal reached (index, NULL when failed), the amount kept, when it ended,
    -- and whether its refunds are all handed to the engine ('planned' → 'done').
    settled_goal  smallint,
    settled_fen   bigint,
    ended_at      timestamptz,
    settle_state  text CHECK (settle_state IN ('planned', 'done')),
    settle_lease  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((status IN ('succeeded', 'failed')) = (ended_at IS NOT NULL)),
    CHECK ((status IN ('live', 'succeeded', 'failed')) = (published_at IS NOT NULL))
);

CREATE INDEX projects_owner_idx ON projects (owner_id, id DESC);
CREATE INDEX projects_newest_idx ON projects (status, published_at DESC, id DESC);
CREATE INDEX projects_ending_idx ON projects (status, deadline, id);
CREATE INDEX projects_funded_idx ON projects (status, raised_fen DESC, id DESC);
CREATE INDEX projects_backed_idx ON projects (status, backers DESC, id DESC);
CREATE INDEX projects_review_idx ON projects (submitted_at, id) WHERE status = 'pending_review';
-- What the settlement job looks for: live past the deadline, or a plan still being sent.
CREATE INDEX projects_due_idx ON projects (deadline) WHERE status = 'live';
CREATE INDEX projects_settling_idx ON projects (id) WHERE settle_state = 'planned';

CREATE TABLE project_goals (
    project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    position    smallint NOT NULL CHECK (position BETWEEN 0 AND 4),
    amount_fen  bigint NOT NULL CHECK (amount_fen > 0),
    title       text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 60),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    images      text[] NOT NULL DEFAULT '{}' CHECK (cardinality(images) <= 9),
    PRIMARY KEY (project_id, position)
);

CREATE TABLE project_rewards (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id     bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    position       smallint NOT NULL CHECK (position BETWEEN 0 AND 19),
    title          text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 60),
    description    text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
    min_amount_fen bigint NOT NULL CHECK (min_amount_fen > 0),
    -- NULL = unlimited.
    quantity       integer CHECK (quantity > 0),
    -- Units held by pending payments, and by paid backings.
    reserved       integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    taken          integer NOT NULL DEFAULT 0 CHECK (taken >= 0),
    ships          boolean NOT NULL DEFAULT false,
    UNIQUE (project_id, position),
    CHECK (quantity IS NULL OR reserved + taken <= quantity)
);

CREATE INDEX project_rewards_project_idx ON project_rewards (project_id, position);

CREATE TABLE backings (
    order_no        text PRIMARY KEY REFERENCES payments (order_no),
    project_id      bigint NOT NULL REFERENCES projects (id),
    user_id         bigint NOT NULL REFERENCES users (id),
    reward_id       bigint REFERENCES project_rewards (id),
    amount_fen      bigint NOT NULL CHECK (amount_fen > 0),
    message         text NOT NULL DEFAULT '' CHECK (char_length(message) <= 200),
    anonymous       boolean NOT NULL DEFAULT false,
    -- The reward unit: held while the payment is pending, taken once paid, released once
    -- (payment closed unpaid, or the backing refunded in full). NULL without a reward.
    unit            text CHECK (unit IN ('reserved', 'taken', 'released')),
    -- Counted in the project's progress (paid before the deadline while live); a backing
    -- paid after that is refunded in full and never counted.
    counted         boolean NOT NULL DEFAULT false,
    -- The project's raised_fen right after this backing counted (the report's goal progress).
    raised_after_fen bigint,
    -- Shipping, for a reward that ships: the address copied at create, then the states.
    ship_name       text,
    ship_phone      text,
    ship_region     text,
    ship_detail     text,
    shipping        text CHECK (shipping IN ('pending', 'shipped', 'delivered')),
    carrier         text CHECK (char_length(carrier) <= 40),
    tracking_no     text CHECK (char_length(tracking_no) <= 64),
    shipped_at      timestamptz,
    delivered_at    timestamptz,
    delivered_by    text CHECK (delivered_by IN ('backer', 'owner', 'admin', 'auto')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((reward_id IS NULL) = (unit IS NULL)),
    CHECK ((shipping IS NULL) OR ship_name IS NOT NULL)
);

CREATE INDEX backings_project_idx ON backings (project_id, created_at DESC);
CREATE INDEX backings_counted_idx ON backings (project_id, order_no) WHERE counted;
CREATE INDEX backings_user_idx ON backings (user_id, created_at DESC);
CREATE INDEX backings_shipped_idx ON backings (shipped_at) WHERE shipping = 'shipped';

-- Money in per person and project: backers counts the rows above 0.
CREATE TABLE project_backers (
    project_id bigint NOT NULL REFERENCES projects (id),
    user_id    bigint NOT NULL REFERENCES users (id),
    net_fen    bigint NOT NULL CHECK (net_fen >= 0),
    PRIMARY KEY (project_id, user_id)
);

CREATE TABLE project_updates (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project_id bigint NOT NULL REFERENCES projects (id),
    author_id  bigint NOT NULL REFERENCES users (id),
    title      text NOT NULL DEFAULT '' CHECK (char_length(title) <= 60),
    body       text NOT NULL CHECK (char_length(body) BETWEEN 1 AND 5000),
    images     text[] NOT NULL DEFAULT '{}' CHECK (cardinality(images) <= 9),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX project_updates_project_idx ON project_updates (project_id, id DESC);

CREATE TABLE project_follows (
    project_id bigint NOT NULL REFERENCES projects (id),
    user_id    bigint NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);

CREATE INDEX project_follows_user_idx ON project_follows (user_id);

-- The settlement plan: one refund per backing owed one, its number chosen when the plan is
-- written (one transaction, before any is sent), handed to the engine once (queued_at), the
-- outcome read from refunds by that number.
CREATE TABLE settlement_refunds (
    project_id bigint NOT NULL REFERENCES projects (id),
    order_no   text NOT NULL REFERENCES backings (order_no),
    refund_no  text NOT NULL UNIQUE,
    amount_fen bigint NOT NULL CHECK (amount_fen > 0),
    -- 'full': the project failed; 'surplus': its share of raised − settled.
    kind       text NOT NULL CHECK (kind IN ('full', 'surplus')),
    queued_at  timestamptz,
    -- Why the engine would not take it (for an operator), when it would not.
    refused    text,
    PRIMARY KEY (project_id, order_no)
);

CREATE INDEX settlement_refunds_unsent_idx ON settlement_refunds (project_id) WHERE queued_at IS NULL AND refused IS NULL;
