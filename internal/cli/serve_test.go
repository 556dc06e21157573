package cli

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe: Serve answers through the handler, LogRequests logs the
// status without the query string, and cancelling the context shuts the
// server down with a nil error.
func TestServe(t *testing.T) {
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := LogRequests(log, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		io.WriteString(w, "tea")
	}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ServeOptions{Addr: "127.0.0.1:0", Handler: h, Log: log, Path: "/x"}) }()
	var url string
	for i := 0; url == "" && i < 200; i++ {
		if m := regexp.MustCompile(`url=(http://\S+/x)`).FindStringSubmatch(logs.String()); m != nil {
			url = m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	if url == "" {
		t.Fatalf("no serving line logged: %s", logs.String())
	}
	resp, err := http.Get(url + "?password=SECRET")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot || string(body) != "tea" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	l := logs.String()
	if !strings.Contains(l, "status=418") || strings.Contains(l, "SECRET") || !strings.Contains(l, "stopped") {
		t.Errorf("logs:\n%s", l)
	}
}

func TestServeListenError(t *testing.T) {
	err := Serve(context.Background(), ServeOptions{Addr: "256.0.0.1:1", Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil || !strings.Contains(err.Error(), "--addr 256.0.0.1:1") {
		t.Fatalf("Serve on a bad address = %v", err)
	}
}

// TestWriteRecords: one JSON line per record with asJSON, a CBOR sequence
// otherwise (a pipe is not a terminal).
func TestWriteRecords(t *testing.T) {
	type rec struct {
		N int `cbor:"n" json:"n"`
	}
	var j, c bytes.Buffer
	if err := WriteRecords(&j, true, rec{1}, rec{2}); err != nil || j.String() != "{\"n\":1}\n{\"n\":2}\n" {
		t.Fatalf("JSON: %q, %v", j.String(), err)
	}
	if err := WriteRecords(&c, false, rec{1}); err != nil || c.String() != "\xa1\x61n\x01" {
		t.Fatalf("CBOR: %x, %v", c.Bytes(), err)
	}
}
