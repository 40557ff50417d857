package mst

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	indigomst "github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/ipfs/go-cid"
)

// randomNode returns a node with sorted random keys sharing prefixes, and
// random links; heights are not considered (encoding does not care).
func randomNode(rng *rand.Rand) *encodedNode {
	n := rng.IntN(6)
	keys := make([]string, 0, n)
	prefix := "app.bsky.feed.post/"
	for len(keys) < n {
		k := prefix[:rng.IntN(len(prefix)+1)] + fmt.Sprintf("%x", rng.Uint64()>>rng.IntN(64))
		keys = append(keys, k)
	}
	keys = sortedUnique(keys)
	if len(keys) == 0 {
		keys = nil
	}
	e := &encodedNode{keys: keys, vals: make([]cid.Cid, len(keys)), links: make([]cid.Cid, len(keys)+1)}
	for i := range keys {
		e.vals[i] = testCID(rng.IntN(1000))
	}
	for i := range e.links {
		if rng.IntN(2) == 0 {
			e.links[i] = testCID(rng.IntN(1000))
		}
	}
	return e
}

func sortedUnique(keys []string) []string {
	m := map[string]bool{}
	var out []string
	for _, k := range keys {
		if !m[k] && k != "" {
			m[k] = true
			out = append(out, k)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// indigoNodeData converts e to indigo's encoding struct.
func indigoNodeData(e *encodedNode) indigomst.NodeData {
	nd := indigomst.NodeData{Entries: []indigomst.EntryData{}}
	if e.links[0].Defined() {
		l := e.links[0]
		nd.Left = &l
	}
	prev := []byte{}
	for i, k := range e.keys {
		p := indigomst.CountPrefixLen(prev, []byte(k))
		ed := indigomst.EntryData{PrefixLen: int64(p), KeySuffix: []byte(k[p:]), Value: e.vals[i]}
		if e.links[i+1].Defined() {
			r := e.links[i+1]
			ed.Right = &r
		}
		nd.Entries = append(nd.Entries, ed)
		prev = []byte(k)
	}
	return nd
}

var cidComparer = cmp.Comparer(func(a, b cid.Cid) bool { return a == b })

func TestEncodeMatchesIndigo(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		e := randomNode(rng)
		got := e.encode()
		nd := indigoNodeData(e)
		want, wantCID, err := nd.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("node %d: encoding differs from indigo:\n got %x\nwant %x", i, got, want)
		}
		if c := cidForNode(got); c != *wantCID {
			t.Fatalf("node %d: CID %s, indigo %s", i, c, wantCID)
		}
		back, err := decodeNode(got)
		if err != nil {
			t.Fatalf("node %d: decode: %v", i, err)
		}
		if diff := cmp.Diff(e, back, cmp.AllowUnexported(encodedNode{}), cidComparer, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("node %d: round trip (-want +got):\n%s", i, diff)
		}
	}
}

// TestDecodeRejects checks that non-canonical or malformed nodes fail with
// ErrInvalidNode.
func TestDecodeRejects(t *testing.T) {
	c := testCID(1)
	link := appendLink(nil, c)
	// entry encodes an entry with key suffix k and prefix length p.
	entry := func(k string, p int, tl []byte) []byte {
		b := []byte{0xa4, 0x61, 'k'}
		b = appendHead(b, majBytes, uint64(len(k)))
		b = append(b, k...)
		b = append(b, 0x61, 'p')
		b = appendHead(b, majUint, uint64(p))
		b = append(b, 0x61, 't')
		b = append(b, tl...)
		b = append(b, 0x61, 'v')
		return append(b, link...)
	}
	node := func(entries ...[]byte) []byte {
		b := []byte{0xa2, 0x61, 'e'}
		b = appendHead(b, majArray, uint64(len(entries)))
		for _, e := range entries {
			b = append(b, e...)
		}
		return append(b, 0x61, 'l', 0xf6)
	}
	valid := node(entry("a/b", 0, []byte{0xf6}), entry("c", 2, link)) // keys a/b, a/c
	if _, err := decodeNode(valid); err != nil {
		t.Fatalf("valid node: %v", err)
	}
	replace := func(old, new []byte) []byte {
		if !bytes.Contains(valid, old) {
			t.Fatalf("%x not in node", old)
		}
		return bytes.Replace(bytes.Clone(valid), old, new, 1)
	}
	tests := map[string][]byte{
		"empty":                {},
		"not a map":            {0x80},
		"map of 3":             append([]byte{0xa3}, valid[1:]...),
		"indefinite map":       append([]byte{0xbf}, valid[1:]...),
		"trailing byte":        append(bytes.Clone(valid), 0),
		"truncated":            valid[:len(valid)-1],
		"keys reversed":        node(entry("a/c", 0, []byte{0xf6}), entry("b", 2, link)),
		"duplicate key":        node(entry("a/b", 0, []byte{0xf6}), entry("", 3, link)),
		"empty key":            node(entry("", 0, []byte{0xf6})),
		"prefix too long":      node(entry("a/b", 0, []byte{0xf6}), entry("c", 4, link)),
		"prefix not maximal":   node(entry("a/b", 0, []byte{0xf6}), entry("/c", 1, link)),
		"first prefix nonzero": node(entry("a/b", 1, []byte{0xf6})),
		"non-minimal uint":     replace([]byte{0x61, 'p', 0x02}, []byte{0x61, 'p', 0x18, 0x02}),
		"field order":          replace([]byte{0xa2, 0x61, 'e'}, []byte{0xa2, 0x61, 'l'}),
		"t missing":            node(append([]byte{0xa3}, bytes.Replace(entry("a/b", 0, []byte{0xf6}), []byte{0x61, 't', 0xf6}, nil, 1)[1:]...)),
		"link without 0x00":    replace(link[:4], []byte{0xd8, 0x2a, 0x58, 0x25, 0x01}),
		"bad CID":              replace(link[5:9], []byte{0x09, 0x71, 0x12, 0x20}),
		"null value":           node(entry("a/b", 0, link), bytes.Replace(entry("c", 2, []byte{0xf6}), link, []byte{0xf6}, 1)),
		"text key bytes":       replace([]byte{0x61, 'k', 0x43}, []byte{0x61, 'k', 0x63}),
		"huge entry count":     append([]byte{0xa2, 0x61, 'e', 0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, valid[4:]...),
		"huge key length":      replace([]byte{0x61, 'k', 0x43}, []byte{0x61, 'k', 0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}),
	}
	for name, data := range tests {
		if _, err := decodeNode(data); !errors.Is(err, ErrInvalidNode) {
			t.Errorf("%s: decodeNode(%x) error %v, want ErrInvalidNode", name, data, err)
		}
	}
}

// FuzzDecodeNode: decoding never panics, and what decodes re-encodes to the
// same bytes and decodes the same with indigo's decoder.
func FuzzDecodeNode(f *testing.F) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 20 {
		f.Add(randomNode(rng).encode())
	}
	f.Add([]byte{0xa2, 0x61, 'e', 0x80, 0x61, 'l', 0xf6})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeNode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidNode) {
				t.Fatalf("error %v does not match ErrInvalidNode", err)
			}
			return
		}
		if got := e.encode(); !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", got, data)
		}
		nd, err := indigomst.NodeDataFromCBOR(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("indigo rejects a node we accept: %v", err)
		}
		if diff := cmp.Diff(indigoNodeData(e), *nd, cidComparer, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("indigo decodes differently (-ours +indigo):\n%s", diff)
		}
	})
}

// FuzzLoadNode loads a tree whose root is an arbitrary block and uses it:
// no panics, and only the package's errors.
func FuzzLoadNode(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 10))
	for range 10 {
		f.Add(randomNode(rng).encode(), "app.bsky.feed.post/3jui7kd2z2t2y")
	}
	_, store, res := buildTree(f, map[string]cid.Cid{"A0/374913": leafCID, "B1/986427": leafCID, "C2/014073": leafCID})
	f.Add(store[res.Root], "B0/601692")
	f.Fuzz(func(t *testing.T, data []byte, key string) {
		ctx := context.Background()
		root := cidForNode(data)
		src := MemBlocks{root: data}
		tr, err := Load(ctx, src, root)
		if err != nil {
			if !errors.Is(err, ErrInvalidNode) && !errors.Is(err, ErrInvalidTree) {
				t.Fatalf("Load error %v", err)
			}
			return
		}
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, ErrMissingBlock) && !errors.Is(err, ErrInvalidKey) &&
				!errors.Is(err, ErrInvalidTree) && !errors.Is(err, ErrUncommitted) {
				t.Fatalf("%s: unexpected error %v", what, err)
			}
		}
		check("Walk", tr.Walk(ctx, "", func(string, cid.Cid) error { return nil }))
		check("WalkReverse", tr.WalkReverse(ctx, key, func(string, cid.Cid) error { return nil }))
		_, err = tr.Proof(ctx, key)
		check("Proof", err)
		_, _, err = tr.Get(ctx, key)
		check("Get", err)
		_, err = tr.Put(ctx, key, leafCID)
		check("Put", err)
		if err == nil {
			_, err = tr.Commit(ctx)
			check("Commit", err)
		}
	})
}
