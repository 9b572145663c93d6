package main

import (
	"slices"
	"sync"
)

// Invoice keeps the field names of the original API, which clients already
// parse.
type Invoice struct {
	InvoiceId string
	Value     float64
	Currency  string
	IsPaid    bool
}

// Store holds invoices in memory. It is safe for concurrent use; it does not
// decide who pays what, the handler serialises payment runs.
type Store struct {
	mu       sync.Mutex
	invoices []Invoice
}

func NewStore(seed []Invoice) *Store {
	return &Store{invoices: slices.Clone(seed)}
}

func seedInvoices() []Invoice {
	return []Invoice{
		{InvoiceId: "I1", Value: 12.15, Currency: "EUR"},
		{InvoiceId: "I2", Value: 10.25, Currency: "GBP"},
		{InvoiceId: "I3", Value: 66.13, Currency: "DKK"},
	}
}

// List returns a copy, so callers never share memory with the store.
func (s *Store) List() []Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.invoices)
}

func (s *Store) Unpaid() []Invoice {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Invoice
	for _, inv := range s.invoices {
		if !inv.IsPaid {
			out = append(out, inv)
		}
	}
	return out
}

// MarkPaid reports whether the invoice exists.
func (s *Store) MarkPaid(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.invoices {
		if s.invoices[i].InvoiceId == id {
			s.invoices[i].IsPaid = true
			return true
		}
	}
	return false
}
