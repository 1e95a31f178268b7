-- The inbox also remembers events refused under the rules, so that a
-- redelivered refusal is refused again instead of being judged anew on a
-- state that later events have changed.

-- +goose Up
ALTER TABLE processed_events ADD COLUMN outcome TEXT NOT NULL DEFAULT 'applied';
ALTER TABLE processed_events ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE processed_events ADD COLUMN detail TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE processed_events DROP COLUMN detail;
ALTER TABLE processed_events DROP COLUMN reason;
ALTER TABLE processed_events DROP COLUMN outcome;
