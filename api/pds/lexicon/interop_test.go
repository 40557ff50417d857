package lexicon

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"testing/fstest"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// The lexicon interop vectors (testdata/, copied unchanged from
// atproto-interop-tests, CC0) are checked against their own catalog,
// testdata/catalog, not the shipped one.

type recordFixture struct {
	Name string          `json:"name"`
	RKey string          `json:"rkey"`
	Data json.RawMessage `json:"data"`
}

func readFixtures[T any](t *testing.T, name string) []T {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out []T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no cases", name)
	}
	return out
}

func interopValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := NewFromFS(os.DirFS("testdata/catalog"))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const interopNSID = syntax.NSID("example.lexicon.record")

// Every record-data vector, under every mode that validates: the valid
// ones are "valid", the invalid ones fail with ErrInvalidRecord. The data
// must parse as atproto data, so that it is the lexicon check that refuses.
func TestInteropRecordData(t *testing.T) {
	v := interopValidator(t)
	for _, file := range []string{"record-data-valid.json", "record-data-invalid.json"} {
		wantValid := file == "record-data-valid.json"
		for _, fx := range readFixtures[recordFixture](t, file) {
			rec, err := atdata.UnmarshalJSON(fx.Data)
			if err != nil {
				t.Fatalf("%s %q: not atproto data: %v", file, fx.Name, err)
			}
			for _, mode := range []Mode{ModeDefault, ModeRequire} {
				st, err := v.Validate(interopNSID, syntax.RecordKey(fx.RKey), rec, mode)
				switch {
				case wantValid && (err != nil || st != StatusValid):
					t.Errorf("%s %q mode %d: got (%q, %v), want valid", file, fx.Name, mode, st, err)
				case !wantValid && !errors.Is(err, ErrInvalidRecord):
					t.Errorf("%s %q mode %d: got (%q, %v), want ErrInvalidRecord", file, fx.Name, mode, st, err)
				case !wantValid && mode == ModeDefault:
					t.Logf("%s: %v", fx.Name, err)
				}
			}
		}
	}
}

// Our verdict on the vectors is indigo's lexicon.ValidateRecord's.
func TestInteropAgreesWithIndigo(t *testing.T) {
	v := interopValidator(t)
	for _, file := range []string{"record-data-valid.json", "record-data-invalid.json"} {
		for _, fx := range readFixtures[recordFixture](t, file) {
			rec, err := atdata.UnmarshalJSON(fx.Data)
			if err != nil {
				t.Fatal(err)
			}
			_, ours := v.Validate(interopNSID, "", rec, ModeDefault)
			theirs := lexicon.ValidateRecord(v.cat, rec, string(interopNSID), 0)
			if (ours == nil) != (theirs == nil) {
				t.Errorf("%s %q: ours %v, indigo %v", file, fx.Name, ours, theirs)
			}
		}
	}
}

type schemaFixture struct {
	Name    string          `json:"name"`
	Lexicon json.RawMessage `json:"lexicon"`
}

// Loading refuses every invalid schema document and takes every valid one.
func TestInteropLexiconFiles(t *testing.T) {
	for _, file := range []string{"lexicon-valid.json", "lexicon-invalid.json"} {
		wantOK := file == "lexicon-valid.json"
		for _, fx := range readFixtures[schemaFixture](t, file) {
			_, err := NewFromFS(fstest.MapFS{"schema.json": {Data: fx.Lexicon}})
			if (err == nil) != wantOK {
				t.Errorf("%s %q: NewFromFS error %v, want ok=%v", file, fx.Name, err, wantOK)
			}
		}
	}
}
