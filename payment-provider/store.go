package main

import "sync"

// Payment is one accepted payment.
type Payment struct {
	ID       string  `json:"id"`
	Value    float64 `json:"value"`
	Currency string  `json:"currency"`
}

// Ledger remembers accepted payments in memory, so a retried payment is
// recognised instead of being booked twice. Each replica has its own.
type Ledger struct {
	mu       sync.Mutex
	payments map[string]Payment
}

func NewLedger() *Ledger {
	return &Ledger{payments: map[string]Payment{}}
}

// Record books p and reports whether its ID had been booked before.
func (l *Ledger) Record(p Payment) (duplicate bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.payments[p.ID]; ok {
		return true
	}
	l.payments[p.ID] = p
	return false
}

func (l *Ledger) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.payments)
}
