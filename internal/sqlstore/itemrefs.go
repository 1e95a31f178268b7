package sqlstore

import "github.com/pressly/goose/v3"

// itemsReferenceOrders is migration 4: on PostgreSQL, order_items' foreign
// key to orders becomes triggers that keep the same rules at a fraction of
// the cost. A foreign key checks every inserted item on its own, a query
// through SPI per row: in a perf profile of the PostgreSQL backends during
// an orderbench drain those checks were about a fifth of the server's CPU,
// and the server is the busiest process there. The triggers check a whole
// statement's items at once:
//
//   - Items inserted or updated must name existing orders, which are locked
//     FOR KEY SHARE until the transaction ends, as the foreign key locked
//     them, so that none is deleted or re-keyed meanwhile
//     (foreign_key_violation, 23503, otherwise).
//   - Deleting orders deletes their items (the key's ON DELETE CASCADE), and
//     so does truncating them (which the key refused unless the items were
//     truncated with them).
//   - An order's id cannot change while items name it (the key's NO
//     ACTION).
//
// The functions keep the search_path they were created with, so that they
// find this schema's tables whatever the path of the session that fires
// them, as a foreign key (which names the table itself) would.
//
// The statements the store runs never change a key or delete, so on the
// event path only the items' check runs, once per statement that inserts or
// updates items. SQLite keeps its foreign key:
// its checks are cheap (no speedup without them, fifth round).
func (s *Store) itemsReferenceOrders() *goose.Migration {
	const what = "items' reference to orders"
	return goose.NewGoMigration(4,
		s.onPostgres(what,
			`ALTER TABLE order_items DROP CONSTRAINT order_items_order_id_fkey`,
			`CREATE FUNCTION order_items_reference_orders() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
			DECLARE
				ids    TEXT[] := ARRAY(SELECT DISTINCT order_id FROM new_items);
				locked BIGINT;
			BEGIN
				SELECT count(*) INTO locked FROM (SELECT FROM orders WHERE id = ANY (ids) FOR KEY SHARE) AS o;
				IF locked < cardinality(ids) THEN
					RAISE foreign_key_violation USING
						MESSAGE = format('insert or update on table "order_items": order %L does not exist',
							(SELECT i FROM unnest(ids) AS i WHERE NOT EXISTS (SELECT FROM orders WHERE id = i) LIMIT 1)),
						TABLE = 'order_items';
				END IF;
				RETURN NULL;
			END $$`,
			`CREATE TRIGGER order_items_inserted AFTER INSERT ON order_items
				REFERENCING NEW TABLE AS new_items
				FOR EACH STATEMENT EXECUTE FUNCTION order_items_reference_orders()`,
			`CREATE TRIGGER order_items_updated AFTER UPDATE ON order_items
				REFERENCING NEW TABLE AS new_items
				FOR EACH STATEMENT EXECUTE FUNCTION order_items_reference_orders()`,
			`CREATE FUNCTION orders_delete_items() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
			BEGIN
				DELETE FROM order_items WHERE order_id = ANY (ARRAY(SELECT id FROM old_orders));
				RETURN NULL;
			END $$`,
			`CREATE TRIGGER orders_deleted AFTER DELETE ON orders
				REFERENCING OLD TABLE AS old_orders
				FOR EACH STATEMENT EXECUTE FUNCTION orders_delete_items()`,
			`CREATE FUNCTION orders_truncate_items() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
			BEGIN
				TRUNCATE order_items;
				RETURN NULL;
			END $$`,
			`CREATE TRIGGER orders_truncated AFTER TRUNCATE ON orders
				FOR EACH STATEMENT EXECUTE FUNCTION orders_truncate_items()`,
			`CREATE FUNCTION orders_keep_referenced_id() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
			BEGIN
				IF EXISTS (SELECT FROM order_items WHERE order_id = OLD.id) THEN
					RAISE foreign_key_violation USING
						MESSAGE = format('update on table "orders": order %L still has items', OLD.id),
						TABLE = 'orders';
				END IF;
				RETURN NEW;
			END $$`,
			`CREATE TRIGGER orders_id_changed BEFORE UPDATE OF id ON orders
				FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
				EXECUTE FUNCTION orders_keep_referenced_id()`,
		),
		s.onPostgres(what,
			`DROP TRIGGER orders_truncated ON orders`,
			`DROP FUNCTION orders_truncate_items()`,
			`DROP TRIGGER orders_id_changed ON orders`,
			`DROP FUNCTION orders_keep_referenced_id()`,
			`DROP TRIGGER orders_deleted ON orders`,
			`DROP FUNCTION orders_delete_items()`,
			`DROP TRIGGER order_items_updated ON order_items`,
			`DROP TRIGGER order_items_inserted ON order_items`,
			`DROP FUNCTION order_items_reference_orders()`,
			`ALTER TABLE order_items ADD CONSTRAINT order_items_order_id_fkey
				FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE`,
		))
}
