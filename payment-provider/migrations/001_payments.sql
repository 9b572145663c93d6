-- One row per booked payment. The payment id is the caller's idempotency
-- key: a retry finds its row instead of booking again.
CREATE TABLE payments (
    id        text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 128),
    value     numeric(14, 2) NOT NULL CHECK (value > 0),
    currency  text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    booked_at timestamptz NOT NULL DEFAULT now()
);
