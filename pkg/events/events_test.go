package events_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/artifactstore/artifact-store/pkg/canonical"
	"github.com/artifactstore/artifact-store/pkg/db"
	"github.com/artifactstore/artifact-store/pkg/db/dbtest"
	"github.com/artifactstore/artifact-store/pkg/events"
)

// envChild makes the test binary an appender process: "URL N ACTOR".
const envChild = "AS_EVENTS_TEST_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(envChild); spec != "" {
		if err := child(spec); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func child(spec string) error {
	var url, actor string
	var n int
	if _, err := fmt.Sscan(spec, &url, &n, &actor); err != nil {
		return err
	}
	ctx := context.Background()
	d, err := db.Open(ctx, url)
	if err != nil {
		return err
	}
	defer d.Close()
	l := events.New(d)
	for i := range n {
		if _, err := l.Commit(ctx, ev(actor, i)); err != nil {
			return err
		}
	}
	return nil
}

// startChild re-executes the test binary as an appender of n events.
func startChild(t *testing.T, url string, n int, actor string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %s", envChild, url, n, actor))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 123456789, time.UTC)

// ev builds a test event whose payload names actor and i.
func ev(actor string, i int) events.Event {
	p, err := canonical.Marshal(map[string]any{"actor": actor, "i": i})
	if err != nil {
		panic(err)
	}
	return events.Event{Type: "test.event", Actor: actor, Time: t0.Add(time.Duration(i) * time.Millisecond), Payload: p}
}

func each(t *testing.T, f func(t *testing.T, d *db.DB, url string)) {
	for _, dialect := range []db.Dialect{db.SQLite, db.Postgres} {
		t.Run(string(dialect), func(t *testing.T) {
			url := dbtest.URL(t, dialect)
			d, err := db.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			if err := d.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			f(t, d, url)
		})
	}
}

func TestRecordIsCanonical(t *testing.T) {
	e := ev("alice", 300)
	e.Seq = 1 << 40
	rec := e.Record()
	if err := canonical.Check(rec); err != nil {
		t.Fatalf("Record not canonical: %v", err)
	}
	var payload any
	if err := canonical.Unmarshal(e.Payload, &payload); err != nil {
		t.Fatal(err)
	}
	want, err := canonical.Marshal(map[string]any{"seq": e.Seq, "time": events.FormatTime(e.Time), "type": e.Type, "actor": e.Actor, "payload": payload})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rec, want) {
		t.Fatalf("Record = %x\nwant     %x", rec, want)
	}
	// Golden: the first event's hash is fixed by the ADR's definition.
	g := events.Event{Seq: 1, Type: "test.genesis", Actor: "", Time: time.Unix(0, 0), Payload: []byte{0xa0}}
	h := events.ChainHash(events.GenesisHash(), g.Record())
	if got, want := h.String(), "blake3:"+goldenGenesisHex; got != want {
		t.Errorf("genesis event hash = %s, want %s", got, want)
	}
}

// goldenGenesisHex is the hash of {seq 1, time 1970-01-01T00:00:00Z, type
// "test.genesis", actor "", payload {}} after the genesis hash.
const goldenGenesisHex = "c2fa0806af396cc1aa612caa5962446d919c8b9e4e853c036d878b6775b42dad" // checked with b3sum over hand-built bytes

func TestValidateType(t *testing.T) {
	for _, good := range []string{"ci.build", "v1.package-created", "acme.ci.job_done", "x.0"} {
		if err := events.ValidateType(good); err != nil {
			t.Errorf("ValidateType(%q) = %v", good, err)
		}
	}
	for _, bad := range []string{"", "build", ".x", "x.", "a..b", "Ci.build", "ci.-x", "ci.b c", "ci.é", string(make([]byte, 200))} {
		if err := events.ValidateType(bad); !errors.Is(err, events.ErrInvalidType) {
			t.Errorf("ValidateType(%q) = %v, want ErrInvalidType", bad, err)
		}
	}
	if err := events.ValidateProducerType("v1.package-created"); !errors.Is(err, events.ErrReservedType) {
		t.Errorf("ValidateProducerType(v1.) = %v", err)
	}
	if err := events.ValidateProducerType("ci.v1"); err != nil {
		t.Error(err)
	}
}

func TestAppendReadHead(t *testing.T) {
	each(t, func(t *testing.T, d *db.DB, _ string) {
		ctx := context.Background()
		l := events.New(d)
		h, err := l.Head(ctx)
		if err != nil || h.Seq != 0 || h.Hash != events.GenesisHash() {
			t.Fatalf("empty head = %+v, %v", h, err)
		}
		var appended []events.Event
		for i := range 5 {
			out, err := l.Commit(ctx, ev("a", i))
			if err != nil {
				t.Fatal(err)
			}
			appended = append(appended, out...)
		}
		got, err := l.Range(ctx, 1, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Seq != 2 || got[2].Seq != 4 {
			t.Fatalf("Range(1,3) = %+v", got)
		}
		for i, e := range got {
			w := appended[i+1]
			if !bytes.Equal(e.Payload, w.Payload) || e.Hash != w.Hash || e.PrevHash != w.PrevHash || !e.Time.Equal(w.Time) || e.Type != w.Type || e.Actor != w.Actor {
				t.Errorf("read %+v, appended %+v", e, w)
			}
		}
		h, err = l.Head(ctx)
		if err != nil || h.Seq != 5 || h.Hash != appended[4].Hash {
			t.Fatalf("head = %+v, %v", h, err)
		}
		if err := l.Verify(ctx); err != nil {
			t.Fatal(err)
		}

		// Bad input leaves no trace.
		bad := []events.Event{
			{Type: "test.x", Time: t0, Payload: []byte{0x18, 0x01}},          // non-shortest integer
			{Type: "test.x", Time: t0, Payload: []byte{0xa0, 0x00}},          // trailing bytes
			{Type: "test.x", Time: t0},                                       // empty
			{Type: "nodot", Time: t0, Payload: []byte{0xa0}},                 // bad type
			{Type: "test.x", Payload: []byte{0xa0}},                          // no time
			{Type: "test.x", Time: t0, Payload: []byte{0xa0}, Actor: "\xff"}, // bad actor
		}
		for _, b := range bad {
			if _, err := l.Commit(ctx, b); err == nil {
				t.Errorf("Commit(%+v) succeeded", b)
			}
		}
		// A rolled-back transaction leaves no gap.
		tx, err := d.SQL.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(ctx, tx, ev("r", 0)); err != nil {
			t.Fatal(err)
		}
		tx.Rollback()
		out, err := l.Commit(ctx, ev("a", 5))
		if err != nil || out[0].Seq != 6 {
			t.Fatalf("after rollback: %+v, %v", out, err)
		}
		if err := l.Verify(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentAppendAndTail: goroutines and a second process append, a
// random share of transactions roll back; the log ends gapless, ordered and
// verified, and a tailer started before them sees every committed event
// exactly once, in order.
func TestConcurrentAppendAndTail(t *testing.T) {
	const (
		writers   = 8
		perWriter = 40
		childN    = 60
	)
	each(t, func(t *testing.T, d *db.DB, url string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		l := events.New(d)

		type seen struct {
			seq   uint64
			actor string
			pay   string
		}
		tailCtx, stopTail := context.WithCancel(ctx)
		defer stopTail()
		var (
			tmu    sync.Mutex
			tailed []seen
			done   = make(chan struct{})
		)
		go func() {
			defer close(done)
			// Started before any append; Tail from 0 loses nothing even
			// before it listens.
			for e, err := range events.New(d).Tail(tailCtx, 0) {
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("tail: %v", err)
					}
					return
				}
				tmu.Lock()
				tailed = append(tailed, seen{e.Seq, e.Actor, string(e.Payload)})
				tmu.Unlock()
			}
		}()

		cmd := startChild(t, url, childN, "child")
		committed := make(map[string]bool)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				actor := "w" + strconv.Itoa(w)
				for i := range perWriter {
					tx, err := d.SQL.BeginTx(ctx, nil)
					if err != nil {
						t.Error(err)
						return
					}
					e, err := l.Append(ctx, tx, ev(actor, i))
					if err != nil {
						tx.Rollback()
						t.Error(err)
						return
					}
					if rng.IntN(4) == 0 {
						tx.Rollback()
						continue
					}
					if err := tx.Commit(); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					committed[string(e.Payload)] = true
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("child appender: %v", err)
		}
		for i := range childN {
			committed[string(ev("child", i).Payload)] = true
		}
		h, err := l.Head(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if h.Seq != uint64(len(committed)) {
			t.Fatalf("head seq %d, committed %d: not gapless", h.Seq, len(committed))
		}
		if err := l.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		// Wait for the tailer to catch up, linger to catch repeats, stop it.
		deadline := time.Now().Add(30 * time.Second)
		for {
			tmu.Lock()
			n := len(tailed)
			tmu.Unlock()
			if n >= len(committed) || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		stopTail()
		<-done
		got := tailed
		if len(got) != len(committed) {
			t.Fatalf("tailer saw %d events, %d committed", len(got), len(committed))
		}
		seenPay := map[string]bool{}
		for i, s := range got {
			if s.seq != uint64(i+1) {
				t.Fatalf("tailer event %d has seq %d", i, s.seq)
			}
			if seenPay[s.pay] || !committed[s.pay] {
				t.Fatalf("tailer saw seq %d (%s) twice or never committed", s.seq, s.actor)
			}
			seenPay[s.pay] = true
		}
	})
}

// TestTailAcrossProcesses: a tailer here sees another process's appends
// while waiting.
func TestTailAcrossProcesses(t *testing.T) {
	each(t, func(t *testing.T, d *db.DB, url string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		l := events.New(d)
		if _, err := l.Commit(ctx, ev("here", 0)); err != nil {
			t.Fatal(err)
		}
		var cmd *exec.Cmd
		n := 0
		for e, err := range l.Tail(ctx, 0) {
			if err != nil {
				t.Fatal(err)
			}
			n++
			if e.Seq != uint64(n) {
				t.Fatalf("seq %d at position %d", e.Seq, n)
			}
			if n == 1 {
				cmd = startChild(t, url, 5, "there")
			}
			if n > 1 && e.Actor != "there" {
				t.Fatalf("event %d from %q", n, e.Actor)
			}
			if n == 6 {
				break
			}
		}
		if err := cmd.Wait(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestTailReconnect kills the tailer's LISTEN connection mid-stream; the
// tailer must reconnect and neither lose nor repeat events.
func TestTailReconnect(t *testing.T) {
	d := dbtest.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l := events.New(d)
	l.SafetyPoll = time.Hour // only notifications or reconnects may wake it
	var kills atomic.Int64
	// The test must not end (and cancel ctx) while the writer is still
	// inside its last Commit: a tailer can see a commit before the call
	// that made it returns.
	writerDone := make(chan struct{})
	defer func() { <-writerDone }()
	go func() {
		defer close(writerDone)
		for i := range 30 {
			if _, err := l.Commit(ctx, ev("a", i)); err != nil {
				t.Error(err)
				return
			}
			if i%10 == 5 {
				time.Sleep(20 * time.Millisecond)
				var killed int
				if err := d.SQL.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
					WHERE datname = current_database() AND query = 'LISTEN `+events.NotifyChannel+`'`).Scan(&killed); err != nil {
					t.Error(err)
				}
				kills.Add(int64(killed))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	n := 0
	for e, err := range l.Tail(ctx, 0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if e.Seq != uint64(n) {
			t.Fatalf("seq %d at position %d", e.Seq, n)
		}
		if n == 30 {
			break
		}
	}
	if kills.Load() == 0 {
		t.Fatal("no LISTEN connection was terminated; the test proved nothing")
	}
}

func TestTamper(t *testing.T) {
	each(t, func(t *testing.T, d *db.DB, _ string) {
		ctx := context.Background()
		l := events.New(d)
		for i := range 10 {
			if _, err := l.Commit(ctx, ev("a", i)); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			col  string
			seq  uint64
			want error
		}{
			{"payload", 4, events.ErrHashMismatch},
			{"hash", 7, events.ErrHashMismatch},
			{"prev_hash", 3, events.ErrBrokenLink},
			{"hash", 10, events.ErrHashMismatch},
		} {
			t.Run(fmt.Sprintf("%s@%d", tc.col, tc.seq), func(t *testing.T) {
				var orig []byte
				if err := d.SQL.QueryRowContext(ctx, `SELECT `+tc.col+` FROM events WHERE seq = $1`, tc.seq).Scan(&orig); err != nil {
					t.Fatal(err)
				}
				mod := bytes.Clone(orig)
				mod[len(mod)/2] ^= 0x01
				set := func(b []byte) {
					if _, err := d.SQL.ExecContext(ctx, `UPDATE events SET `+tc.col+` = $1 WHERE seq = $2`, b, tc.seq); err != nil {
						t.Fatal(err)
					}
				}
				set(mod)
				defer set(orig)
				err := l.Verify(ctx)
				var ce *events.ChainError
				if !errors.As(err, &ce) || ce.Seq != tc.seq || !errors.Is(err, tc.want) || !errors.Is(err, events.ErrChainBroken) {
					t.Fatalf("Verify = %v, want ChainError at %d wrapping %v", err, tc.seq, tc.want)
				}
				if _, err := events.Replay(ctx, d, &recorder{}); !errors.As(err, &ce) || ce.Seq != tc.seq {
					t.Fatalf("Replay over a broken chain = %v", err)
				}
			})
		}
		if err := l.Verify(ctx); err != nil {
			t.Fatalf("after restoring: %v", err)
		}
		// Fields that no longer decode are named too.
		for _, tc := range []struct {
			set string
			arg any
			seq uint64
		}{
			{"hash = $1", []byte{1, 2, 3}, 2},
			{"recorded_at = $1", "2026-11-26T12:00:00.1234567890Z", 6},
			{"recorded_at = $1", "yesterday", 6},
			{"type = $1", "test.evenT", 8},
		} {
			var orig any
			col := strings.Fields(tc.set)[0]
			if err := d.SQL.QueryRowContext(ctx, `SELECT `+col+` FROM events WHERE seq = $1`, tc.seq).Scan(&orig); err != nil {
				t.Fatal(err)
			}
			if _, err := d.SQL.ExecContext(ctx, `UPDATE events SET `+tc.set+` WHERE seq = $2`, tc.arg, tc.seq); err != nil {
				t.Fatal(err)
			}
			var ce *events.ChainError
			if err := l.Verify(ctx); !errors.As(err, &ce) || ce.Seq != tc.seq {
				t.Errorf("%s: Verify = %v, want ChainError at %d", tc.set, err, tc.seq)
			}
			if _, err := d.SQL.ExecContext(ctx, `UPDATE events SET `+col+` = $1 WHERE seq = $2`, orig, tc.seq); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.Verify(ctx); err != nil {
			t.Fatalf("after restoring: %v", err)
		}
		// A deleted event is a gap; a head that lags is a head mismatch.
		if _, err := d.SQL.ExecContext(ctx, `DELETE FROM events WHERE seq = 5`); err != nil {
			t.Fatal(err)
		}
		if err := l.Verify(ctx); !errors.Is(err, events.ErrGap) {
			t.Fatalf("Verify after delete = %v, want ErrGap", err)
		}
	})
}

// recorder is a ViewWriter that keeps what it was fed in a table of its own.
type recorder struct {
	resets int
	seqs   []uint64
	failAt uint64
}

func (r *recorder) Reset(ctx context.Context, tx *sql.Tx) error {
	r.resets++
	r.seqs = nil
	_, err := tx.ExecContext(ctx, `DELETE FROM metadata_schemas`)
	return err
}

func (r *recorder) Apply(ctx context.Context, tx *sql.Tx, e events.Event) error {
	if e.Seq == r.failAt {
		return errors.New("boom")
	}
	r.seqs = append(r.seqs, e.Seq)
	_, err := tx.ExecContext(ctx, `INSERT INTO metadata_schemas (name, version, schema_cbor, digest, created_seq) VALUES ($1, 1, $2, $3, $4)`,
		"s"+strconv.FormatUint(e.Seq, 10), e.Payload, e.Hash.String(), int64(e.Seq))
	return err
}

func TestReplay(t *testing.T) {
	each(t, func(t *testing.T, d *db.DB, _ string) {
		ctx := context.Background()
		l := events.New(d)
		l.BatchSize = 3
		for i := range 2500 / 100 {
			if _, err := l.Commit(ctx, ev("a", i)); err != nil {
				t.Fatal(err)
			}
		}
		count := func() (n int) {
			if err := d.SQL.QueryRowContext(ctx, `SELECT count(*) FROM metadata_schemas`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		r := &recorder{}
		last, err := events.Replay(ctx, d, r)
		if err != nil || last != 25 || r.resets != 1 || len(r.seqs) != 25 || count() != 25 {
			t.Fatalf("Replay = %d, %v; recorder %+v; rows %d", last, err, r, count())
		}
		for i, s := range r.seqs {
			if s != uint64(i+1) {
				t.Fatalf("applied out of order: %v", r.seqs)
			}
		}
		// Replay is repeatable, and a failing Apply rolls everything back.
		if _, err := events.Replay(ctx, d, &recorder{failAt: 13}); err == nil {
			t.Fatal("Replay with failing Apply succeeded")
		}
		if count() != 25 {
			t.Fatalf("failed replay left %d rows", count())
		}
	})
}

func TestRecordRoundTrip(t *testing.T) {
	d := dbtest.SQLite(t)
	l := events.New(d)
	out, err := l.Commit(context.Background(), ev("a", 1), ev("b", 2))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range out {
		b, err := events.MarshalRecord(e)
		if err != nil {
			t.Fatal(err)
		}
		back, err := events.UnmarshalRecord(b)
		if err != nil {
			t.Fatal(err)
		}
		if back.Seq != e.Seq || back.Hash != e.Hash || back.PrevHash != e.PrevHash || !bytes.Equal(back.Payload, e.Payload) || !back.Time.Equal(e.Time) {
			t.Fatalf("round trip %+v → %+v", e, back)
		}
		if events.ChainHash(back.PrevHash, back.Record()) != back.Hash {
			t.Fatal("decoded record does not re-hash")
		}
	}
}

func FuzzUnmarshalRecord(f *testing.F) {
	e := ev("a", 1)
	e.Seq, e.PrevHash = 1, events.GenesisHash()
	e.Hash = events.ChainHash(e.PrevHash, e.Record())
	b, err := events.MarshalRecord(e)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte{0xa0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := events.UnmarshalRecord(b)
		if err != nil {
			return
		}
		again, err := events.MarshalRecord(ev)
		if err != nil {
			t.Fatalf("accepted record does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
