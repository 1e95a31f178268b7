-- The status an order was created in (new or pending, from the status of
-- its OrderCreated or POST /orders), kept when the order moves on: another
-- creation of the order is the same content only with the same status. ''
-- on orders stored before this column, whose initial status is not known:
-- not compared.

-- +goose Up
ALTER TABLE orders ADD COLUMN initial_status TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE orders DROP COLUMN initial_status;
