module invoice-app

go 1.24
