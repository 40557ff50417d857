package mst

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/ipfs/go-cid"
)

// Interop fixtures from bluesky-social/atproto-interop-tests (testdata/).

func TestInteropKeyHeights(t *testing.T) {
	var cases []struct {
		Key    string `json:"key"`
		Height int    `json:"height"`
	}
	readJSON(t, "testdata/key_heights.json", &cases)
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range cases {
		if got := KeyHeight(c.Key); got != c.Height {
			t.Errorf("KeyHeight(%q) = %d, want %d", c.Key, got, c.Height)
		}
	}
}

func TestInteropCommonPrefix(t *testing.T) {
	var cases []struct {
		Left  string `json:"left"`
		Right string `json:"right"`
		Len   int    `json:"len"`
	}
	readJSON(t, "testdata/common_prefix.json", &cases)
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range cases {
		if got := commonPrefixLen(c.Left, c.Right); got != c.Len {
			t.Errorf("commonPrefixLen(%q, %q) = %d, want %d", c.Left, c.Right, got, c.Len)
		}
	}
}

// TestInteropExampleKeys checks the height of every example key (the digit
// after the letter), that each is a valid key, and builds trees of them.
func TestInteropExampleKeys(t *testing.T) {
	keys := readLines(t, "testdata/example_keys.txt")
	if len(keys) != 156 {
		t.Fatalf("read %d keys, want 156", len(keys))
	}
	m := map[string]cid.Cid{}
	for i, k := range keys {
		want, err := strconv.Atoi(k[1:2])
		if err != nil {
			t.Fatalf("key %q: %v", k, err)
		}
		if got := KeyHeight(k); got != want {
			t.Errorf("KeyHeight(%q) = %d, want %d", k, got, want)
		}
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q): %v", k, err)
		}
		m[k] = testCID(i)
	}
	// The whole set, and prefixes of it: trees up to 6 layers with many
	// layer gaps. Compare with indigo, node by node.
	for _, n := range []int{1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 156} {
		sub := map[string]cid.Cid{}
		for _, k := range keys[:n] {
			sub[k] = m[k]
		}
		tr, _, res := buildTree(t, sub)
		wantRoot, wantBlocks := indigoAllBlocks(t, sub)
		if res.Root != wantRoot {
			t.Errorf("%d keys: root %s, indigo %s", n, res.Root, wantRoot)
		}
		compareBlocks(t, fmt.Sprintf("%d keys", n), allBlocks(t, tr), wantBlocks)
	}
}

// compareBlocks requires two block sets to be identical.
func compareBlocks(t testing.TB, what string, got, want map[cid.Cid][]byte) {
	t.Helper()
	for c, b := range want {
		g, ok := got[c]
		if !ok {
			t.Errorf("%s: missing block %s", what, c)
			continue
		}
		if string(g) != string(b) {
			t.Errorf("%s: block %s bytes differ", what, c)
		}
	}
	for c := range got {
		if _, ok := want[c]; !ok {
			t.Errorf("%s: extra block %s", what, c)
		}
	}
}

// Known roots shared by the Go and TypeScript implementations' interop
// tests.
func TestInteropKnownMaps(t *testing.T) {
	tests := []struct {
		name string
		keys []string
		root string
	}{
		{"empty", nil, "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"},
		{"trivial", []string{"com.example.record/3jqfcqzm3fo2j"}, "bafyreibj4lsc3aqnrvphp5xmrnfoorvru4wynt6lwidqbm2623a6tatzdu"},
		{"single layer 2", []string{"com.example.record/3jqfcqzm3fx2j"}, "bafyreih7wfei65pxzhauoibu3ls7jgmkju4bspy4t2ha2qdjnzqvoy33ai"},
		{"simple", []string{
			"com.example.record/3jqfcqzm3fp2j",
			"com.example.record/3jqfcqzm3fr2j",
			"com.example.record/3jqfcqzm3fs2j",
			"com.example.record/3jqfcqzm3ft2j",
			"com.example.record/3jqfcqzm4fc2j",
		}, "bafyreicmahysq4n6wfuxo522m6dpiy7z7qzym3dzs756t5n7nfdgccwq7m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]cid.Cid{}
			for _, k := range tt.keys {
				m[k] = leafCID
			}
			_, _, res := buildTree(t, m)
			if got := res.Root.String(); got != tt.root {
				t.Errorf("root %s, want %s", got, tt.root)
			}
		})
	}
}

// Edge cases with known roots from the same interop tests: trimming the
// top on delete, a split two layers down, and new layers two above.
func TestInteropEdgeCases(t *testing.T) {
	const rec = "com.example.record/"
	type step struct {
		put, del string
		root     string
	}
	tests := []struct {
		name  string
		keys  []string
		root  string
		steps []step
	}{
		{
			name: "trim top on delete",
			keys: []string{"3jqfcqzm3fn2j", "3jqfcqzm3fo2j", "3jqfcqzm3fp2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm3fu2j"},
			root: "bafyreifnqrwbk6ffmyaz5qtujqrzf5qmxf7cbxvgzktl4e3gabuxbtatv4",
			steps: []step{
				{del: "3jqfcqzm3fs2j", root: "bafyreie4kjuxbwkhzg2i5dljaswcroeih4dgiqq6pazcmunwt2byd725vi"},
			},
		},
		{
			name: "split two layers down",
			keys: []string{
				"3jqfcqzm3fo2j", "3jqfcqzm3fp2j", "3jqfcqzm3fr2j", "3jqfcqzm3fs2j", "3jqfcqzm3ft2j", "3jqfcqzm3fz2j",
				"3jqfcqzm4fc2j", "3jqfcqzm4fd2j", "3jqfcqzm4ff2j", "3jqfcqzm4fg2j", "3jqfcqzm4fh2j",
			},
			root: "bafyreiettyludka6fpgp33stwxfuwhkzlur6chs4d2v4nkmq2j3ogpdjem",
			steps: []step{
				{put: "3jqfcqzm3fx2j", root: "bafyreid2x5eqs4w4qxvc5jiwda4cien3gw2q6cshofxwnvv7iucrmfohpm"},
				{del: "3jqfcqzm3fx2j", root: "bafyreiettyludka6fpgp33stwxfuwhkzlur6chs4d2v4nkmq2j3ogpdjem"},
			},
		},
		{
			name: "new layers two higher",
			keys: []string{"3jqfcqzm3ft2j", "3jqfcqzm3fz2j"},
			root: "bafyreidfcktqnfmykz2ps3dbul35pepleq7kvv526g47xahuz3rqtptmky",
			steps: []step{
				{put: "3jqfcqzm3fx2j", root: "bafyreiavxaxdz7o7rbvr3zg2liox2yww46t7g6hkehx4i4h3lwudly7dhy"},
				{del: "3jqfcqzm3fx2j", root: "bafyreidfcktqnfmykz2ps3dbul35pepleq7kvv526g47xahuz3rqtptmky"},
				{put: "3jqfcqzm3fx2j"},
				{put: "3jqfcqzm4fd2j", root: "bafyreig4jv3vuajbsybhyvb7gggvpwh2zszwfyttjrj6qwvcsp24h6popu"},
				{del: "3jqfcqzm4fd2j", root: "bafyreiavxaxdz7o7rbvr3zg2liox2yww46t7g6hkehx4i4h3lwudly7dhy"},
			},
		},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]cid.Cid{}
			for _, k := range tt.keys {
				m[rec+k] = leafCID
			}
			tr, store, res := buildTree(t, m)
			if res.Root.String() != tt.root {
				t.Fatalf("root %s, want %s", res.Root, tt.root)
			}
			for _, s := range tt.steps {
				// Each step runs on a tree loaded lazily from the store.
				var err error
				if tr, err = Load(ctx, store, tr.Root()); err != nil {
					t.Fatal(err)
				}
				if s.put != "" {
					_, err = tr.Put(ctx, rec+s.put, leafCID)
				} else {
					_, err = tr.Delete(ctx, rec+s.del)
				}
				if err != nil {
					t.Fatal(err)
				}
				res := mustCommit(t, tr, store)
				if s.root != "" && res.Root.String() != s.root {
					t.Errorf("after put %q del %q: root %s, want %s", s.put, s.del, res.Root, s.root)
				}
			}
		})
	}
}

type commitProofFixture struct {
	Comment          string   `json:"comment"`
	LeafValue        string   `json:"leafValue"`
	Keys             []string `json:"keys"`
	Adds             []string `json:"adds"`
	Dels             []string `json:"dels"`
	RootBeforeCommit string   `json:"rootBeforeCommit"`
	RootAfterCommit  string   `json:"rootAfterCommit"`
	BlocksInProof    []string `json:"blocksInProof"`
}

// TestInteropCommitProofs runs the sync v1.1 commit proof fixtures: build
// the "before" tree, apply the ops on a lazily loaded copy, check both roots,
// check that the commit's blocks include every block the fixture lists, and
// check that a consumer holding only those blocks can invert the ops (in
// every order) back to the "before" root, with our tree and with indigo's.
func TestInteropCommitProofs(t *testing.T) {
	var fixtures []commitProofFixture
	readJSON(t, "testdata/commit-proof-fixtures.json", &fixtures)
	if len(fixtures) != 6 {
		t.Fatalf("read %d fixtures, want 6", len(fixtures))
	}
	ctx := context.Background()
	for _, f := range fixtures {
		t.Run(f.Comment, func(t *testing.T) {
			leaf := cid.MustParse(f.LeafValue)
			m := map[string]cid.Cid{}
			for _, k := range f.Keys {
				m[k] = leaf
			}
			_, store, before := buildTree(t, m)
			if before.Root.String() != f.RootBeforeCommit {
				t.Fatalf("root before %s, want %s", before.Root, f.RootBeforeCommit)
			}
			tr, err := Load(ctx, store, before.Root)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range f.Adds {
				if prev, err := tr.Put(ctx, k, leaf); err != nil || prev.Defined() {
					t.Fatalf("Put(%q) = %v, %v", k, prev, err)
				}
			}
			for _, k := range f.Dels {
				if prev, err := tr.Delete(ctx, k); err != nil || prev != leaf {
					t.Fatalf("Delete(%q) = %v, %v", k, prev, err)
				}
			}
			res := mustCommit(t, tr, store)
			if res.Root.String() != f.RootAfterCommit {
				t.Fatalf("root after %s, want %s", res.Root, f.RootAfterCommit)
			}
			if res.PrevRoot != before.Root {
				t.Errorf("PrevRoot %s, want %s", res.PrevRoot, before.Root)
			}
			got := MemBlocks{}
			got.Put(res.NewBlocks...)
			got.Put(res.ProofBlocks...)
			for _, s := range f.BlocksInProof {
				if _, ok := got[cid.MustParse(s)]; !ok {
					t.Errorf("commit blocks lack %s", s)
				}
			}
			checkInversion(t, res)
		})
	}
}

// checkInversion checks that res's blocks alone let a consumer invert
// res.Ops and get res.PrevRoot: our Invert in every order of the ops (up
// to 4 ops; a sample of orders beyond), and indigo's partial tree in its
// normalized order (deletes first, then by key) and in reverse key order.
func checkInversion(t testing.TB, res *CommitResult) {
	t.Helper()
	ctx := context.Background()
	blocks := MemBlocks{}
	blocks.Put(res.NewBlocks...)
	blocks.Put(res.ProofBlocks...)

	want := res.PrevRoot
	if !want.Defined() {
		want = emptyRootCID() // a first commit inverts to the empty tree
	}
	for _, ops := range opOrders(res.Ops) {
		got, err := Invert(ctx, blocks, res.Root, ops)
		if err != nil {
			t.Fatalf("Invert (order %v): %v", opKeys(ops), err)
		}
		if got != want {
			t.Fatalf("Invert %v gave %s, want %s", opKeys(ops), got, want)
		}
	}
	checkIndigoInversion(t, res)
}

// opKeys lists the keys of ops, for messages (at most 10).
func opKeys(ops []Op) []string {
	var out []string
	for i, op := range ops {
		if i == 10 {
			return append(out, fmt.Sprintf("... (%d ops)", len(ops)))
		}
		out = append(out, op.Key)
	}
	return out
}

// emptyRootCID is the CID of the empty tree.
func emptyRootCID() cid.Cid {
	return cidForNode((&encodedNode{links: []cid.Cid{cid.Undef}}).encode())
}

// opOrders returns every order of ops for up to 4 ops (24 orders), else the
// sorted order, its reverse, and 6 shuffles.
func opOrders(ops []Op) [][]Op {
	if len(ops) <= 4 {
		var out [][]Op
		permute(slices.Clone(ops), 0, &out)
		return out
	}
	rev := slices.Clone(ops)
	slices.Reverse(rev)
	out := [][]Op{slices.Clone(ops), rev}
	rng := rand.New(rand.NewPCG(uint64(len(ops)), 99))
	for range 6 {
		s := slices.Clone(ops)
		rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
		out = append(out, s)
	}
	return out
}

func permute(a []Op, i int, out *[][]Op) {
	if i == len(a) {
		*out = append(*out, slices.Clone(a))
		return
	}
	for j := i; j < len(a); j++ {
		a[i], a[j] = a[j], a[i]
		permute(a, i+1, out)
		a[i], a[j] = a[j], a[i]
	}
}
