package lexicon

import (
	"io/fs"
	"testing"
)

// BenchmarkValidatePost validates a typical post: text, three facets, a
// reply, an image embed, langs and self-labels.
func BenchmarkValidatePost(b *testing.B) {
	v := shippedValidator(b)
	rec := parse(b, typicalPost)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate("app.bsky.feed.post", tid, rec, ModeDefault); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateInvalidPost is the error path: the whole post is walked
// and the message built.
func BenchmarkValidateInvalidPost(b *testing.B) {
	v := shippedValidator(b)
	rec := parse(b, edit(typicalPost, `"size": 483012`, `"size": 2000001`))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Validate("app.bsky.feed.post", tid, rec, ModeDefault); err == nil {
			b.Fatal("accepted")
		}
	}
}

// BenchmarkNewFromEmbedded is the one-time cost of loading the shipped
// catalog.
func BenchmarkNewFromEmbedded(b *testing.B) {
	sub := mustSub(b)
	for b.Loop() {
		if _, err := NewFromFS(sub); err != nil {
			b.Fatal(err)
		}
	}
}

func mustSub(b *testing.B) fs.FS {
	b.Helper()
	sub, err := fs.Sub(embedded, "lexicons")
	if err != nil {
		b.Fatal(err)
	}
	return sub
}
