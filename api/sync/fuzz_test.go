package sync

import (
	"errors"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/pdslog/pdslog/api/xrpc"
)

// parseCIDs never panics; it either refuses with an InvalidRequest naming
// cids, or returns defined, distinct CIDs, one for each distinct input CID,
// in the order first given.
func FuzzParseCIDs(f *testing.F) {
	f.Add("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm")
	f.Add("bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm\nbafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm")
	f.Add("bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy\nzb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA")
	f.Add("QmQPeNsJPyVWPFDVHb9ntntv1Tc5sJJCtvGbRiZWyk4VAq")
	f.Add("")
	f.Add("\n")
	f.Add("bafy\x00")
	f.Fuzz(func(t *testing.T, in string) {
		raw := strings.Split(in, "\n")
		if in == "" {
			raw = nil
		}
		got, err := parseCIDs(raw)
		if err != nil {
			var xe *xrpc.Error
			if !errors.As(err, &xe) || xe.Status != 400 || xe.Name != "InvalidRequest" || !strings.Contains(xe.Message, "cids") {
				t.Fatalf("%q: error %v is not an InvalidRequest about cids", raw, err)
			}
			return
		}
		if len(raw) == 0 {
			t.Fatal("no cids accepted")
		}
		want := map[cid.Cid]bool{}
		for _, s := range raw {
			c, err := cid.Decode(s)
			if err != nil {
				t.Fatalf("%q accepted but go-cid refuses it: %v", s, err)
			}
			want[c] = true
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d CIDs, want %d distinct", raw, len(got), len(want))
		}
		for i, c := range got {
			if !c.Defined() || !want[c] {
				t.Fatalf("%q: CID %d %v not among the inputs", raw, i, c)
			}
			for _, d := range got[:i] {
				if d == c {
					t.Fatalf("%q: %v returned twice", raw, c)
				}
			}
		}
		// Order of first appearance.
		first, _ := cid.Decode(raw[0])
		if got[0] != first {
			t.Fatalf("%q: first CID %v, want %v", raw, got[0], first)
		}
	})
}
