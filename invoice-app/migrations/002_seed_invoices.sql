-- The three invoices every new installation starts with: I1, I2, I3.
INSERT INTO invoices (value, currency) VALUES
    (12.15, 'EUR'),
    (10.25, 'GBP'),
    (66.13, 'DKK');
