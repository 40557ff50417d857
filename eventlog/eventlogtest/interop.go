package eventlogtest

import (
	"bufio"
	"os"
	"testing"
)

// InteropCases reads an atproto interop .txt fixture: one case a line;
// empty lines and lines starting with # are skipped; nothing is trimmed
// (some invalid cases have meaningful spaces). It fails the test when the
// file holds no case, so a test over it cannot pass vacuously.
func InteropCases(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); len(line) > 0 && line[0] != '#' {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no cases", path)
	}
	return out
}
