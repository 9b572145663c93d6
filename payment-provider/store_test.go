package main

import (
	"sync"
	"sync/atomic"
	"testing"
)

func TestLedgerRecord(t *testing.T) {
	l := NewLedger()
	p := Payment{ID: "I1", Value: 12.15, Currency: "EUR"}
	if l.Record(p) {
		t.Fatal("first Record reported a duplicate")
	}
	if !l.Record(p) {
		t.Fatal("second Record did not report a duplicate")
	}
	if l.Record(Payment{ID: "I2", Value: 1, Currency: "EUR"}) {
		t.Fatal("a new ID was reported as a duplicate")
	}
	if n := l.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2", n)
	}
}

// Run with -race: of many concurrent bookings of one ID exactly one is new.
func TestLedgerConcurrentRecord(t *testing.T) {
	l := NewLedger()
	var fresh atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !l.Record(Payment{ID: "I1", Value: 1, Currency: "EUR"}) {
				fresh.Add(1)
			}
		}()
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Fatalf("%d bookings were new, want 1", fresh.Load())
	}
}
