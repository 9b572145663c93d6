-- Invoices in creation order. The database hands out the ids ("I" and the
-- next number), so replicas never collide.
CREATE TABLE invoices (
    number     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         text GENERATED ALWAYS AS ('I' || number::text) STORED UNIQUE,
    value      numeric(14, 2) NOT NULL CHECK (value > 0),
    currency   text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    paid_at    timestamptz,
    -- The replica paying this invoice right now, and since when. A claim
    -- older than the lease belongs to a replica that died and is taken over.
    claimed_by text,
    claimed_at timestamptz,
    CHECK ((claimed_by IS NULL) = (claimed_at IS NULL))
);

-- Pay runs walk the unpaid invoices in order.
CREATE INDEX invoices_unpaid ON invoices (number) WHERE paid_at IS NULL;
