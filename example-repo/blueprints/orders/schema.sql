-- The declared end state of every tenant's orders database.
CREATE TABLE customers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    email      TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    created_at TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE orders (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    status      TEXT    NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'paid', 'shipped', 'cancelled')),
    total_cents INTEGER NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
    placed_at   TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE INDEX orders_customer_idx ON orders (customer_id, placed_at DESC);
CREATE INDEX orders_open_idx ON orders (placed_at) WHERE status IN ('pending', 'paid');

CREATE TABLE order_items (
    order_id    INTEGER NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line        INTEGER NOT NULL,
    sku         TEXT    NOT NULL,
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    price_cents INTEGER NOT NULL,
    PRIMARY KEY (order_id, line)
);

CREATE VIEW customer_revenue AS
    SELECT c.id AS customer_id, c.email, SUM(o.total_cents) AS revenue_cents
    FROM customers c JOIN orders o ON o.customer_id = c.id
    WHERE o.status IN ('paid', 'shipped')
    GROUP BY c.id, c.email;

CREATE TRIGGER orders_total_guard BEFORE UPDATE OF total_cents ON orders
WHEN NEW.status = 'shipped' AND NEW.total_cents <> OLD.total_cents
BEGIN
    SELECT RAISE(ABORT, 'total of a shipped order cannot change');
END;
