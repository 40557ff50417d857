package migrations

import (
	"strings"
	"testing"
)

// TestFiles: the files are numbered NNNN_name.sql from 0001 without gaps,
// and their comments hold neither semicolons nor quotes (so a naive
// statement splitter cannot mis-split them).
func TestFiles(t *testing.T) {
	all, err := All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 || all[0].Name != "0001_init.sql" {
		t.Fatalf("migrations %v, want 0001_init.sql first", all)
	}
	for i, m := range all {
		if m.Number != i+1 {
			t.Errorf("%s: number %d, want %d", m.Name, m.Number, i+1)
		}
		for _, line := range strings.Split(m.SQL, "\n") {
			if _, c, ok := strings.Cut(line, "--"); ok && strings.ContainsAny(c, `;'"`) {
				t.Errorf("%s: comment with ; or a quote: %q", m.Name, line)
			}
		}
	}
}
