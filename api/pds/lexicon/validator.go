package lexicon

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Mode is the client's choice of validation: the validate parameter of
// createRecord and putRecord, or the validate field of applyWrites.
type Mode int

const (
	// ModeDefault (validate unset) validates records of known types and
	// accepts other collections unvalidated, with StatusUnknown.
	ModeDefault Mode = iota
	// ModeRequire (validate: true) also refuses collections with no
	// record lexicon.
	ModeRequire
	// ModeSkip (validate: false) checks only that $type is the collection.
	ModeSkip
)

// ModeOf maps the optional validate parameter to a Mode: nil is
// ModeDefault, true ModeRequire, false ModeSkip.
func ModeOf(validate *bool) Mode {
	switch {
	case validate == nil:
		return ModeDefault
	case *validate:
		return ModeRequire
	default:
		return ModeSkip
	}
}

// Status is the validationStatus of a write's output.
type Status string

const (
	// StatusValid: the record was validated against its lexicon.
	StatusValid Status = "valid"
	// StatusUnknown: no lexicon for the collection; not validated.
	StatusUnknown Status = "unknown"
)

// The empty Status means validation was skipped (ModeSkip); the reference
// omits validationStatus from the output then.

//go:embed lexicons
var embedded embed.FS

// Validator validates records against a lexicon catalog. It is immutable
// once built and safe for concurrent use.
type Validator struct {
	cat     *lexicon.BaseCatalog            // checked the schemas at load
	defs    map[string]map[string]*entry    // NSID -> def name -> def
	records map[string]lexicon.SchemaRecord // record type NSID -> its main def
}

// entry is one def of a schema file, found without building strings.
type entry struct {
	def  any    // an indigo lexicon.Schema* value
	base string // the NSID of its file, for its own "#frag" refs
	name string // the $type naming it: "nsid" for main, else "nsid#frag"
}

// lookup finds the def ref names, ref being written in the schema file of
// NSID base ("#frag", "nsid" or "nsid#frag"); nil if there is none.
func (v *Validator) lookup(base, ref string) *entry {
	nsid, frag := ref, "main"
	if i := strings.IndexByte(ref, '#'); i >= 0 {
		nsid, frag = ref[:i], ref[i+1:]
		if nsid == "" {
			nsid = base
		}
	}
	return v.defs[nsid][frag]
}

var shipped = sync.OnceValues(func() (*Validator, error) {
	sub, err := fs.Sub(embedded, "lexicons")
	if err != nil {
		return nil, fmt.Errorf("lexicon: %w", err)
	}
	return NewFromFS(sub)
})

// New returns the Validator for the lexicons the PDS ships (embedded from
// lexicons/). They are loaded on the first call; later calls return the
// same Validator.
func New() (*Validator, error) { return shipped() }

// NewFromFS builds a Validator from every .json lexicon schema file in
// fsys (walked recursively). A file that is not a valid schema, an NSID
// defined by two files, or a ref reachable from a record type that does
// not resolve is an error.
func NewFromFS(fsys fs.FS) (*Validator, error) {
	cat := lexicon.NewBaseCatalog()
	defs := make(map[string]map[string]*entry)
	files := make(map[string]string) // NSID -> file
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		var sf lexicon.SchemaFile
		if err := json.Unmarshal(b, &sf); err != nil {
			return fmt.Errorf("lexicon: %s: %w", p, err)
		}
		if other, dup := files[sf.ID]; dup {
			return fmt.Errorf("lexicon: %s: %s is also defined in %s", p, sf.ID, other)
		}
		files[sf.ID] = p
		if err := cat.AddSchemaFile(sf); err != nil {
			return fmt.Errorf("lexicon: %s: %w", p, err)
		}
		m := make(map[string]*entry, len(sf.Defs))
		for frag, d := range sf.Defs {
			name := sf.ID
			if frag != "main" {
				name += "#" + frag
			}
			m[frag] = &entry{def: d.Inner, base: sf.ID, name: name}
		}
		defs[sf.ID] = m
		return nil
	})
	if err != nil {
		return nil, err
	}
	v := &Validator{cat: cat, defs: defs, records: make(map[string]lexicon.SchemaRecord)}
	for id, m := range defs {
		if e := m["main"]; e != nil {
			if rec, ok := e.def.(lexicon.SchemaRecord); ok {
				v.records[id] = rec
			}
		}
	}
	if err := v.checkRefs(); err != nil {
		return nil, err
	}
	return v, nil
}

// RecordTypes lists the collections the Validator has a record lexicon
// for, sorted.
func (v *Validator) RecordTypes() []syntax.NSID {
	out := make([]syntax.NSID, 0, len(v.records))
	for id := range v.records {
		out = append(out, syntax.NSID(id))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Validate checks rec, to be written at collection/rkey, under mode, and
// returns the write's validationStatus. rec is atproto data as atdata
// parses it; its $type must be the collection or absent. An empty rkey
// skips the record key check (for callers that have not picked the key
// yet). Every error matches ErrInvalidRecord. Mode values other than the
// three constants act as ModeDefault.
func (v *Validator) Validate(collection syntax.NSID, rkey syntax.RecordKey, rec map[string]any, mode Mode) (Status, error) {
	if rec == nil {
		return "", invalid("Record must be an object")
	}
	if t, ok := rec["$type"]; ok {
		s, isString := t.(string)
		if !isString {
			return "", invalid("Record/$type must be a string")
		}
		if s != string(collection) {
			return "", invalid(fmt.Sprintf("Invalid $type: expected %s, got %s", collection, s))
		}
	}
	if mode == ModeSkip {
		return "", nil
	}
	def, ok := v.records[string(collection)]
	if !ok {
		if mode == ModeRequire {
			return "", invalid(fmt.Sprintf("Unknown lexicon type: %s", collection))
		}
		return StatusUnknown, nil
	}
	if rkey != "" {
		if msg := checkKey(def.Key, string(rkey)); msg != "" {
			return "", invalid(fmt.Sprintf("Invalid record key for %s: %s", collection, msg))
		}
	}
	w := walker{v: v, path: make([]step, 1, 16)}
	w.path[0] = step{key: "Record"}
	if err := w.object(def.Record, rec, string(collection)); err != nil {
		return "", invalid(fmt.Sprintf("Invalid %s record: %s", collection, err))
	}
	return StatusValid, nil
}

// checkKey checks a record key against a lexicon key type ("tid", "nsid",
// "any", "literal:<value>"); it returns what is wrong, or "".
func checkKey(keyType, rkey string) string {
	switch {
	case keyType == "tid":
		if _, err := syntax.ParseTID(rkey); err != nil {
			return "must be a valid TID"
		}
	case keyType == "nsid":
		if _, err := syntax.ParseNSID(rkey); err != nil {
			return "must be a valid nsid"
		}
	case strings.HasPrefix(keyType, "literal:"):
		if want := strings.TrimPrefix(keyType, "literal:"); rkey != want {
			return fmt.Sprintf("must be %q", want)
		}
	default: // "any"
		if _, err := syntax.ParseRecordKey(rkey); err != nil {
			return "must be a valid Record Key"
		}
	}
	return ""
}

// checkRefs resolves every ref and union member reachable from a record
// type, so that a missing schema file shows at load, not in a write.
func (v *Validator) checkRefs() error {
	seen := make(map[string]bool)
	var walk func(def any, base, from string) error
	walk = func(def any, base, from string) error {
		follow := func(ref string) error {
			full := qualify(base, ref)
			if seen[full] {
				return nil
			}
			seen[full] = true
			e := v.lookup(base, ref)
			if e == nil {
				return fmt.Errorf("lexicon: %s refers to %s, which is not in the catalog", from, full)
			}
			return walk(e.def, e.base, e.name)
		}
		switch s := def.(type) {
		case lexicon.SchemaRecord:
			return walk(s.Record, base, from)
		case lexicon.SchemaObject:
			keys := make([]string, 0, len(s.Properties))
			for k := range s.Properties {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if err := walk(s.Properties[k].Inner, base, from); err != nil {
					return err
				}
			}
		case lexicon.SchemaArray:
			return walk(s.Items.Inner, base, from)
		case lexicon.SchemaRef:
			return follow(s.Ref)
		case lexicon.SchemaUnion:
			for _, ref := range s.Refs {
				if err := follow(ref); err != nil {
					return err
				}
			}
		}
		return nil
	}
	for _, id := range v.RecordTypes() {
		if err := walk(v.records[string(id)], string(id), string(id)); err != nil {
			return err
		}
	}
	return nil
}

// qualify turns a ref written in the schema file of NSID base into a full
// reference: "#frag" becomes base#frag.
func qualify(base, ref string) string {
	if strings.HasPrefix(ref, "#") {
		return base + ref
	}
	return ref
}

// typeName is the $type value that names the def with ID id: the bare NSID
// for a main def, nsid#frag otherwise.
func typeName(id string) string {
	return strings.TrimSuffix(id, "#main")
}
