-- One schema for SQLite and PostgreSQL: only types and syntax both accept.
-- Amounts are BIGINT minor units of the order's currency. Times are UTC with
-- microsecond precision: TIMESTAMPTZ on PostgreSQL; on SQLite the declared type
-- has no meaning and the store writes fixed-width RFC 3339 text, which sorts
-- in time order.

-- +goose Up
CREATE TABLE orders (
    id                  TEXT NOT NULL PRIMARY KEY,
    customer_id         TEXT NOT NULL,
    customer_name       TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL,
    currency            TEXT NOT NULL,
    total_amount        BIGINT NOT NULL,
    shipping_region     TEXT NOT NULL DEFAULT '',
    shipping_method     TEXT NOT NULL DEFAULT 'standard',
    shipping_cost       BIGINT,
    discount            BIGINT,
    final_total         BIGINT,
    refund_amount       BIGINT,
    cancellation_reason TEXT NOT NULL DEFAULT '',
    tracking_number     TEXT NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ NOT NULL,
    updated_at          TIMESTAMPTZ NOT NULL
);

-- Listing by status pages through (status, id); listing all pages through the
-- primary key.
CREATE INDEX orders_status_id ON orders (status, id);

CREATE TABLE order_items (
    order_id    TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no     INTEGER NOT NULL,
    product_id  TEXT NOT NULL,
    quantity    BIGINT NOT NULL CHECK (quantity > 0),
    unit_price  BIGINT NOT NULL,
    total_price BIGINT NOT NULL,
    reserved    BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (order_id, line_no)
);

-- available and reserved can never go negative: Reserve and Release are
-- conditional updates, so a violation of these checks is a bug, not a rule.
CREATE TABLE stock (
    product_id TEXT NOT NULL PRIMARY KEY,
    available  BIGINT NOT NULL CHECK (available >= 0),
    reserved   BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at TIMESTAMPTZ NOT NULL
);

-- The idempotency inbox: an event id is recorded in the same transaction as
-- the event's effect.
CREATE TABLE processed_events (
    event_id     TEXT NOT NULL PRIMARY KEY,
    event_name   TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE processed_events;
DROP TABLE stock;
DROP TABLE order_items;
DROP TABLE orders;
