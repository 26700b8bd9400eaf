CREATE TABLE invoices (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    number      TEXT    NOT NULL UNIQUE,
    total_cents INTEGER NOT NULL DEFAULT 0 CHECK (total_cents >= 0),
    issued_at   TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);
