module payment-provider

go 1.24
