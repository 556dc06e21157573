// Command gosha256 is a benchmark peer: it prints the SHA-256 of each file
// named on standard input (one path per line) using only crypto/sha256, on
// one goroutine, so make bench can compare as-digest with Go's SHA-256 alone.
package main

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

func main() {
	sc := bufio.NewScanner(os.Stdin)
	buf := make([]byte, 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for sc.Scan() {
		f, err := os.Open(sc.Text())
		if err != nil {
			fmt.Fprintln(os.Stderr, "gosha256:", err)
			os.Exit(1)
		}
		h := sha256.New()
		if _, err := io.CopyBuffer(h, f, buf); err != nil {
			fmt.Fprintln(os.Stderr, "gosha256:", err)
			os.Exit(1)
		}
		f.Close()
		fmt.Fprintf(out, "%x  %s\n", h.Sum(nil), sc.Text())
	}
}
