// Command tokenstore is the Go peer of tollgate's memory-store benchmark
// (benches/core.rs builds and runs it in the same run).
//
// The store is written the way the common Go JWT and session token stores are:
// one map behind a sync.RWMutex, each entry carrying its expiry, and a Get that
// compares the expiry with time.Now() so an expired token is never returned.
// Put stores a new version of the value under the write lock.
//
// The workload is tollgate's, byte for byte: 10,000 keys shaped like
// tollgate's session keys ("s:{u:u<i>}:sid"), a 300-byte value, every Get a
// hit, Gets and Puts cycling over all keys in order, one goroutine. It prints
// the median of five testing.Benchmark rounds, in nanoseconds per operation:
//
//	get_ns 112.4
//	put_ns 243.0
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"
)

type entry struct {
	value     []byte
	version   uint64
	expiresAt int64 // unix milliseconds
}

// Store is a token store: a map, a read-write lock, an expiry check on Get.
type Store struct {
	mu      sync.RWMutex
	entries map[string]entry
	version uint64
}

func NewStore() *Store {
	return &Store{entries: make(map[string]entry)}
}

// Get answers the value and its version, or false when the key is absent or expired.
func (s *Store) Get(key string) ([]byte, uint64, bool) {
	now := time.Now().UnixMilli()
	s.mu.RLock()
	e, ok := s.entries[key]
	s.mu.RUnlock()
	if !ok || e.expiresAt <= now {
		return nil, 0, false
	}
	return e.value, e.version, true
}

// Put stores value under key until expiresAt (unix milliseconds); an expiry
// already past deletes the key.
func (s *Store) Put(key string, value []byte, expiresAt int64) {
	now := time.Now().UnixMilli()
	s.mu.Lock()
	if expiresAt <= now {
		delete(s.entries, key)
	} else {
		s.version++
		s.entries[key] = entry{value: value, version: s.version, expiresAt: expiresAt}
	}
	s.mu.Unlock()
}

func median(xs []float64) float64 {
	sort.Float64s(xs)
	return xs[len(xs)/2]
}

func main() {
	keys := flag.Int("keys", 10000, "keys in the store")
	valueSize := flag.Int("value", 300, "bytes per value")
	rounds := flag.Int("rounds", 5, "testing.Benchmark rounds per operation (the median is printed)")
	flag.Parse()
	if *keys < 1 || *rounds < 1 || *valueSize < 0 {
		fmt.Fprintln(os.Stderr, "tokenstore: -keys and -rounds must be at least 1, -value at least 0")
		os.Exit(2)
	}

	store := NewStore()
	far := int64(1) << 62
	value := make([]byte, *valueSize)
	for i := range value {
		value[i] = 7
	}
	names := make([]string, *keys)
	for i := range names {
		names[i] = "s:{u:u" + strconv.Itoa(i) + "}:sid"
		store.Put(names[i], value, far)
	}

	var sink uint64
	get := func(b *testing.B) {
		n := len(names)
		for i := 0; i < b.N; i++ {
			v, ver, ok := store.Get(names[i%n])
			if !ok || len(v) != *valueSize {
				panic("a get missed")
			}
			sink += ver
		}
	}
	put := func(b *testing.B) {
		n := len(names)
		for i := 0; i < b.N; i++ {
			store.Put(names[i%n], value, far)
		}
	}
	for _, op := range []struct {
		name string
		fn   func(*testing.B)
	}{{"get_ns", get}, {"put_ns", put}} {
		ns := make([]float64, *rounds)
		for r := range ns {
			res := testing.Benchmark(op.fn)
			ns[r] = float64(res.T.Nanoseconds()) / float64(res.N)
		}
		fmt.Printf("%s %.1f\n", op.name, median(ns))
	}
	if sink == 0 {
		fmt.Fprintln(os.Stderr, "tokenstore: no version read")
	}
}
