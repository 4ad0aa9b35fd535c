-- The national tracking-and-tracing data store (Art. 8.4.1 items (a)-(j)).
-- See node/src/data/MODEL.md for the model and its EPCIS 2.0 / EU mapping.
-- Times are Unix milliseconds (UTC) in BIGINT; identifiers are BIGINT.

CREATE TABLE operators (
    id INTEGER PRIMARY KEY NOT NULL,
    ext_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    country TEXT,
    address TEXT,
    roles TEXT,
    licence TEXT,
    tax_id TEXT,
    extra TEXT
);

CREATE TABLE facilities (
    id INTEGER PRIMARY KEY NOT NULL,
    ext_id TEXT NOT NULL UNIQUE,
    operator_id BIGINT REFERENCES operators (id),
    name TEXT NOT NULL,
    kind TEXT,
    country TEXT,
    address TEXT,
    extra TEXT
);

CREATE TABLE machines (
    id INTEGER PRIMARY KEY NOT NULL,
    ext_id TEXT NOT NULL UNIQUE,
    facility_id BIGINT REFERENCES facilities (id),
    model TEXT,
    capacity_per_min BIGINT,
    extra TEXT
);

CREATE TABLE products (
    id INTEGER PRIMARY KEY NOT NULL,
    ext_id TEXT NOT NULL UNIQUE,
    operator_id BIGINT REFERENCES operators (id),
    description TEXT NOT NULL,
    brand TEXT,
    gtin TEXT,
    intended_market TEXT,
    category TEXT,
    extra TEXT
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY NOT NULL,
    event_key TEXT NOT NULL UNIQUE,
    kind SMALLINT NOT NULL,
    epcis_type SMALLINT NOT NULL,
    action SMALLINT,
    event_time BIGINT NOT NULL,
    tz_offset TEXT NOT NULL,
    biz_step TEXT,
    disposition TEXT,
    read_point TEXT,
    biz_location TEXT,
    facility_id BIGINT REFERENCES facilities (id),
    machine_id BIGINT REFERENCES machines (id),
    parent_code_id BIGINT,
    product_id BIGINT,
    import_id BIGINT,
    doc TEXT NOT NULL
);
CREATE INDEX events_time ON events (event_time);
CREATE INDEX events_parent ON events (parent_code_id) WHERE parent_code_id IS NOT NULL;

-- One row per unit-level or aggregated code. Kept narrow on purpose: this table
-- holds billions of rows at a large Party (see BENCHMARKS.md, bytes per code).
-- Its reference columns carry no FOREIGN KEY clause: the importer resolves them
-- itself and the per-row checks would halve the ingest rate. Column order puts
-- the fixed-width columns first (PostgreSQL alignment).
CREATE TABLE codes (
    id INTEGER PRIMARY KEY NOT NULL,
    product_id BIGINT,
    applied_by BIGINT,
    parent_id BIGINT,
    aggregated_by BIGINT,
    level SMALLINT NOT NULL,
    status SMALLINT NOT NULL DEFAULT 0,
    code TEXT NOT NULL UNIQUE
);
CREATE INDEX codes_parent ON codes (parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX codes_applied ON codes (applied_by) WHERE applied_by IS NOT NULL;

CREATE TABLE event_codes (
    code_id BIGINT NOT NULL,
    event_id BIGINT NOT NULL,
    role SMALLINT NOT NULL,
    PRIMARY KEY (code_id, event_id, role)
) WITHOUT ROWID;
CREATE INDEX event_codes_event ON event_codes (event_id);

CREATE TABLE aggregation_history (
    child_id BIGINT NOT NULL,
    ended_by BIGINT NOT NULL,
    parent_id BIGINT NOT NULL,
    aggregated_by BIGINT,
    PRIMARY KEY (child_id, ended_by)
) WITHOUT ROWID;
CREATE INDEX aggregation_history_parent ON aggregation_history (parent_id);
CREATE INDEX aggregation_history_ended ON aggregation_history (ended_by);

CREATE TABLE imports (
    id INTEGER PRIMARY KEY NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    file_name TEXT NOT NULL,
    format TEXT NOT NULL,
    imported_at BIGINT NOT NULL,
    codes BIGINT NOT NULL,
    events BIGINT NOT NULL,
    records BIGINT NOT NULL,
    context TEXT
);
