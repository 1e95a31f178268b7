package sqlstore

import (
	"fmt"
	"strconv"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/pressly/goose/v3"

	"github.com/orderd/orderd/internal/order"
)

// itemsInOrders is migration 7: on SQLite an order's items move into its own
// row, as a JSON array in the column items, and order_items becomes a view
// of that column with the table's columns, so that what reads the table
// (reports, an operator's query) reads the same rows.
//
// On SQLite every row an event inserts is an insert into a B-tree or two,
// all on the one writer, and an order's items were half of its rows: an
// order with two items wrote five B-trees' entries for them (the table and
// its key, per item), now none beyond the order's own. The items are only
// ever read and written with their order, whole, and only the reserved
// flags change after the order is created, when the order's row is written
// anyway. In a CPU profile of an orderbench drain (-store sqlite, the
// static build) the writer's transactions took 5.78 s against 7.36 s
// before, their statements 2.58 s against 3.93; six alternating pairs on a
// slow day drained 19,429–26,855 ev/s against 19,426–23,452, and the disks
// wrote 2.5–2.6 KiB per event against 3.0–3.1 (docs/BENCHMARKS.md, the
// twenty-fifth round).
//
// PostgreSQL keeps the table: there the server, not one writer, does the
// work, its statements and the triggers of migration 4 are tuned to the
// table, and its drain meets its target; the migration only records its
// version there.
//
// The first start after the upgrade waits for the rows to be moved once:
// for 300,000 orders with two items each, 1.8 s with SQLite's C library and
// 3.0 s with the Go translation in a scratch test. Going down rebuilds the
// table from the column.
func (s *Store) itemsInOrders() *goose.Migration {
	// The items of one order, in line order, as the column holds them:
	// [{"product_id":…,"quantity":…,"unit_price":…,"total_price":…,"reserved":…}].
	const toJSON = `SELECT json_group_array(json_object('product_id', i.product_id, 'quantity', i.quantity,
			'unit_price', i.unit_price, 'total_price', i.total_price,
			'reserved', json(CASE WHEN i.reserved THEN 'true' ELSE 'false' END)) ORDER BY i.line_no)
		FROM order_items AS i WHERE i.order_id = orders.id`
	up := s.byDialect("items in their order's row",
		[]string{
			`ALTER TABLE orders ADD COLUMN items TEXT NOT NULL DEFAULT '[]'`,
			`UPDATE orders SET items = (` + toJSON + `) WHERE EXISTS (SELECT 1 FROM order_items AS i WHERE i.order_id = orders.id)`,
			`DROP TABLE order_items`,
			itemsView,
		}, nil)
	down := s.byDialect("items in their own table",
		[]string{
			`DROP VIEW order_items`,
			`CREATE TABLE order_items (
				order_id    TEXT NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
				line_no     INTEGER NOT NULL,
				product_id  TEXT NOT NULL,
				quantity    BIGINT NOT NULL CHECK (quantity > 0),
				unit_price  BIGINT NOT NULL,
				total_price BIGINT NOT NULL,
				reserved    BOOLEAN NOT NULL DEFAULT FALSE,
				PRIMARY KEY (order_id, line_no)
			)`,
			`INSERT INTO order_items SELECT * FROM (` + itemsViewQuery + `) ORDER BY 1, 2`,
			`ALTER TABLE orders DROP COLUMN items`,
		}, nil)
	return goose.NewGoMigration(7, up, down)
}

// itemsViewQuery reads the items column of every order as order_items'
// rows (see itemsInOrders). reserved is 1 or 0, as SQLite stores a BOOLEAN.
const itemsViewQuery = `SELECT o.id AS order_id, j.key + 1 AS line_no,
		json_extract(j.value, '$.product_id') AS product_id, json_extract(j.value, '$.quantity') AS quantity,
		json_extract(j.value, '$.unit_price') AS unit_price, json_extract(j.value, '$.total_price') AS total_price,
		json_extract(j.value, '$.reserved') AS reserved
	FROM orders AS o, json_each(o.items) AS j`

const itemsView = `CREATE VIEW order_items AS ` + itemsViewQuery

// itemJSON is one element of the items column.
type itemJSON struct {
	ProductID  string `json:"product_id"`
	Quantity   int64  `json:"quantity"`
	UnitPrice  int64  `json:"unit_price"`
	TotalPrice int64  `json:"total_price"`
	Reserved   bool   `json:"reserved"`
}

// itemsJSON is the items column's value for o's items. It is written by
// hand, not marshalled: it runs for every order the one SQLite writer
// stores.
func itemsJSON(o *order.Order) (string, error) {
	b := make([]byte, 0, 24+96*len(o.Items))
	b = append(b, '[')
	for i, it := range o.Items {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		b = append(b, `{"product_id":`...)
		if b, err = jsontext.AppendQuote(b, it.ProductID); err != nil {
			return "", fmt.Errorf("order %s: item %d: product id: %w", o.ID, i+1, err)
		}
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, it.Quantity, 10)
		b = append(b, `,"unit_price":`...)
		b = strconv.AppendInt(b, it.UnitPrice, 10)
		b = append(b, `,"total_price":`...)
		b = strconv.AppendInt(b, it.TotalPrice, 10)
		b = append(b, `,"reserved":`...)
		b = strconv.AppendBool(b, it.Reserved)
		b = append(b, '}')
	}
	return string(append(b, ']')), nil
}

// parseItems reads the items column.
func parseItems(orderID, column string) ([]order.Item, error) {
	var js []itemJSON
	if err := json.Unmarshal([]byte(column), &js); err != nil {
		return nil, fmt.Errorf("order %s: stored items: %w", orderID, err)
	}
	if len(js) == 0 {
		return nil, nil
	}
	items := make([]order.Item, len(js))
	for i, it := range js {
		items[i] = order.Item{ProductID: it.ProductID, Quantity: it.Quantity, UnitPrice: it.UnitPrice,
			TotalPrice: it.TotalPrice, Reserved: it.Reserved}
	}
	return items, nil
}
