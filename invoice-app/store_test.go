package main

import (
	"sync"
	"testing"
)

func TestStoreSeed(t *testing.T) {
	got := NewStore(seedInvoices()).List()
	want := []Invoice{
		{InvoiceId: "I1", Value: 12.15, Currency: "EUR"},
		{InvoiceId: "I2", Value: 10.25, Currency: "GBP"},
		{InvoiceId: "I3", Value: 66.13, Currency: "DKK"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d invoices, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("invoice %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestStoreListIsACopy(t *testing.T) {
	s := NewStore(seedInvoices())
	list := s.List()
	list[0].IsPaid = true
	if s.List()[0].IsPaid {
		t.Fatal("changing a listed invoice changed the store")
	}
}

func TestStoreMarkPaid(t *testing.T) {
	s := NewStore(seedInvoices())
	if !s.MarkPaid("I2") {
		t.Fatal("MarkPaid(I2) = false, want true")
	}
	if s.MarkPaid("nope") {
		t.Fatal("MarkPaid(nope) = true, want false")
	}
	unpaid := s.Unpaid()
	if len(unpaid) != 2 || unpaid[0].InvoiceId != "I1" || unpaid[1].InvoiceId != "I3" {
		t.Fatalf("Unpaid() = %+v, want I1 and I3", unpaid)
	}
}

// Run with -race: readers and writers at once must not race.
func TestStoreConcurrentAccess(t *testing.T) {
	s := NewStore(seedInvoices())
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(2)
		go func() { defer wg.Done(); s.MarkPaid(seedInvoices()[i%3].InvoiceId) }()
		go func() { defer wg.Done(); _ = s.List(); _ = s.Unpaid() }()
	}
	wg.Wait()
	if n := len(s.Unpaid()); n != 0 {
		t.Fatalf("%d invoices unpaid, want 0", n)
	}
}
