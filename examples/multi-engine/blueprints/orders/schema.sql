CREATE TYPE order_status AS ENUM ('new', 'paid', 'shipped');

CREATE TABLE orders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer    uuid NOT NULL,
    status      order_status NOT NULL DEFAULT 'new',
    total       numeric(12, 2) NOT NULL CHECK (total >= 0),
    placed_at   timestamptz NOT NULL DEFAULT now(),
    metadata    jsonb NOT NULL DEFAULT '{}'
);

CREATE INDEX orders_customer_idx ON orders (customer, placed_at DESC);
