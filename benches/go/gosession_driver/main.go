// Command gosession_driver measures hunterhug/gosession on one Redis server, for
// scripts/gosession-bench.sh, which builds it in GOPATH mode next to a fetched
// copy of gosession (none of gosession's code is in this repository).
//
// The operations are tollgate's in examples/redis_side_by_side.rs:
//
//	sign-in  SetToken(user, ttl), a new user each time
//	verify   CheckToken(token), over 1,024 tokens signed in beforehand
//	refresh  RefreshToken(token, ttl), each goroutine on its own token
//	revoke   DeleteToken(token), tokens signed in beforehand, one per call
//
// each with 1 goroutine and with 64, for a bounded time. Output, one line each:
//
//	RESULT <op> <goroutines> <ops per second> <p50 microseconds> <calls>
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hunterhug/gosession"
)

const ttl = 3600

type result struct {
	calls     int
	elapsed   time.Duration
	latencies []time.Duration
}

// measure runs op(g, i) in each of n goroutines until limit has passed (or
// perG calls each), and fails the run on the first error.
func measure(n, perG int, limit time.Duration, op func(g, i int) error) result {
	var wg sync.WaitGroup
	lats := make([][]time.Duration, n)
	var failed atomic.Value
	start := time.Now()
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < perG && time.Since(start) < limit; i++ {
				t := time.Now()
				if err := op(g, i); err != nil {
					failed.Store(err)
					return
				}
				lats[g] = append(lats[g], time.Since(t))
			}
		}(g)
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		fmt.Fprintln(os.Stderr, "gosession_driver: an operation failed:", err)
		os.Exit(1)
	}
	r := result{elapsed: time.Since(start)}
	for _, l := range lats {
		r.latencies = append(r.latencies, l...)
	}
	r.calls = len(r.latencies)
	return r
}

func (r result) print(op string, n int) {
	sort.Slice(r.latencies, func(a, b int) bool { return r.latencies[a] < r.latencies[b] })
	p50 := 0.0
	if r.calls > 0 {
		p50 = float64(r.latencies[r.calls/2].Nanoseconds()) / 1000
	}
	fmt.Printf("RESULT %s %d %.0f %.1f %d\n", op, n, float64(r.calls)/r.elapsed.Seconds(), p50, r.calls)
}

// signIn signs in count new users with 64 goroutines and answers their tokens.
func signIn(s gosession.TokenManage, prefix string, count int) []string {
	tokens := make([]string, count)
	var wg sync.WaitGroup
	var next int64 = -1
	var failed atomic.Value
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(atomic.AddInt64(&next, 1))
				if i >= count {
					return
				}
				t, err := s.SetToken(prefix+strconv.Itoa(i), ttl)
				if err != nil {
					failed.Store(err)
					return
				}
				tokens[i] = t
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		fmt.Fprintln(os.Stderr, "gosession_driver: sign-in failed:", err)
		os.Exit(1)
	}
	return tokens
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "Redis address")
	seconds := flag.Float64("seconds", 2, "seconds per operation and concurrency")
	tasks := flag.String("tasks", "1,64", "goroutine counts, comma separated")
	flag.Parse()
	limit := time.Duration(*seconds * float64(time.Second))

	// A pool as large as the goroutines: gosession's default (20 active) would
	// refuse the 64-goroutine runs with "connection pool exhausted".
	conf := gosession.NewRedisSessionSingleModeConfig(*addr, 0, "")
	conf.RedisMaxActive = 0
	conf.RedisMaxIdle = 128
	s, err := gosession.NewRedisSession(conf)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gosession_driver: cannot connect:", err)
		os.Exit(1)
	}
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	signIn(s, "warm-"+run+"-", 256)

	for _, field := range strings.Split(*tasks, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "gosession_driver: -tasks takes positive numbers, comma separated")
			os.Exit(2)
		}
		perG := 200000
		if n > 1 {
			perG = 20000
		}
		tag := fmt.Sprintf("%s-%d-", run, n)

		measure(n, perG, limit, func(g, i int) error {
			_, err := s.SetToken(fmt.Sprintf("u-%sg%d-%d", tag, g, i), ttl)
			return err
		}).print("sign-in", n)

		pool := signIn(s, "v-"+tag, 1024)
		measure(n, perG, limit, func(g, i int) error {
			_, ok, err := s.CheckToken(pool[(g*7919+i)%len(pool)])
			if err == nil && !ok {
				err = fmt.Errorf("a live token was not found")
			}
			return err
		}).print("verify", n)

		chains := signIn(s, "r-"+tag, n)
		measure(n, perG, limit, func(g, i int) error {
			return s.RefreshToken(chains[g], ttl)
		}).print("refresh", n)

		// As many tokens as the run can revoke: 1.2 times the sign-in rate's worth.
		budget := 30000
		if n > 1 {
			budget = 120000
		}
		victims := signIn(s, "d-"+tag, budget)
		per := len(victims) / n
		measure(n, per, limit, func(g, i int) error {
			return s.DeleteToken(victims[g*per+i])
		}).print("revoke", n)
	}
}
