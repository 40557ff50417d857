package lexicon

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"

	"github.com/pdslog/pdslog/api/pds/lexicon/langtag"
)

// flags for indigo's leaf validators: the zero value is the strict
// validation the reference does (datetimes need a timezone, no legacy
// blobs).
const flags lexicon.ValidateFlags = 0

// step is one element of the path to a value: a property name, or an
// array index when key is "".
type step struct {
	key   string
	index int
}

// walker validates data against schema defs, keeping the path to the
// value being checked ("Record/embed/images/0/alt") for the message. base
// arguments are the NSID of the schema file the def being walked comes
// from, for its "#frag" refs.
type walker struct {
	v    *Validator
	path []step
}

func (w *walker) push(key string, index int) { w.path = append(w.path, step{key, index}) }
func (w *walker) pop()                       { w.path = w.path[:len(w.path)-1] }

// fail reports msg about the value at the current path.
func (w *walker) fail(msg string) error {
	var b strings.Builder
	for i, s := range w.path {
		if i > 0 {
			b.WriteByte('/')
		}
		if s.key != "" {
			b.WriteString(s.key)
		} else {
			b.WriteString(strconv.Itoa(s.index))
		}
	}
	b.WriteByte(' ')
	b.WriteString(msg)
	return errors.New(b.String())
}

// failAt reports msg about the property key of the current value.
func (w *walker) failAt(key, msg string) error {
	w.push(key, 0)
	defer w.pop()
	return w.fail(msg)
}

func (w *walker) value(def any, d any, base string) error {
	switch s := def.(type) {
	case lexicon.SchemaObject:
		obj, ok := d.(map[string]any)
		if !ok {
			return w.fail("must be an object")
		}
		return w.object(s, obj, base)
	case lexicon.SchemaArray:
		return w.array(s, d, base)
	case lexicon.SchemaRef:
		return w.ref(base, s.Ref, d)
	case lexicon.SchemaUnion:
		return w.union(s, d, base)
	case lexicon.SchemaRecord: // only reachable through a ref
		obj, ok := d.(map[string]any)
		if !ok {
			return w.fail("must be an object")
		}
		return w.object(s.Record, obj, base)
	default:
		return w.leaf(def, d)
	}
}

func (w *walker) object(s lexicon.SchemaObject, obj map[string]any, base string) error {
	for _, k := range s.Required {
		if _, ok := obj[k]; !ok {
			return w.fail(fmt.Sprintf("must have the property %q", k))
		}
	}
	// Report the first bad property in name order, so that the same record
	// always gets the same message; sort only when something is wrong.
	var bad []string
	for k, def := range s.Properties {
		val, ok := obj[k]
		if !ok || (val == nil && s.IsNullable(k)) {
			continue
		}
		w.push(k, 0)
		err := w.value(def.Inner, val, base)
		w.pop()
		if err != nil {
			bad = append(bad, k)
		}
	}
	if len(bad) == 0 {
		return nil
	}
	sort.Strings(bad)
	w.push(bad[0], 0)
	defer w.pop()
	return w.value(s.Properties[bad[0]].Inner, obj[bad[0]], base)
}

func (w *walker) array(s lexicon.SchemaArray, d any, base string) error {
	arr, ok := d.([]any)
	if !ok {
		return w.fail("must be an array")
	}
	if s.MaxLength != nil && len(arr) > *s.MaxLength {
		return w.fail(fmt.Sprintf("must not have more than %d elements", *s.MaxLength))
	}
	if s.MinLength != nil && len(arr) < *s.MinLength {
		return w.fail(fmt.Sprintf("must not have fewer than %d elements", *s.MinLength))
	}
	for i, item := range arr {
		w.push("", i)
		err := w.value(s.Items.Inner, item, base)
		w.pop()
		if err != nil {
			return err
		}
	}
	return nil
}

// ref validates d against the def ref names (written in the schema file
// of NSID base). A named object def is a typed object: data carrying some
// other $type is refused.
func (w *walker) ref(base, ref string, d any) error {
	e := w.v.lookup(base, ref)
	if e == nil {
		// NewFromFS checked every ref reachable from a record type.
		return w.fail("refers to a missing lexicon: " + qualify(base, ref))
	}
	switch e.def.(type) {
	case lexicon.SchemaObject, lexicon.SchemaRecord:
		if obj, ok := d.(map[string]any); ok {
			if t, has := obj["$type"]; has && t != e.name {
				return w.failAt("$type", "must be "+e.name)
			}
		}
	}
	return w.value(e.def, d, e.base)
}

// union validates d against the member its $type names. An open union
// accepts an unlisted $type without validating it, as the reference does;
// a closed union refuses it.
func (w *walker) union(s lexicon.SchemaUnion, d any, base string) error {
	obj, _ := d.(map[string]any)
	t, ok := obj["$type"].(string)
	if !ok {
		return w.fail(`must be an object which includes the "$type" property`)
	}
	for _, ref := range s.Refs {
		if refNames(base, ref, t) {
			return w.ref(base, ref, d)
		}
	}
	if s.Closed != nil && *s.Closed {
		refs := make([]string, len(s.Refs))
		for i, ref := range s.Refs {
			refs[i] = typeName(qualify(base, ref))
		}
		return w.fail("$type must be one of " + strings.Join(refs, ", "))
	}
	return nil
}

// refNames reports whether ref, written in the schema file of NSID base,
// names the $type t, without building the qualified string.
func refNames(base, ref, t string) bool {
	ref = strings.TrimSuffix(ref, "#main")
	if strings.HasPrefix(ref, "#") {
		return len(t) == len(base)+len(ref) && strings.HasPrefix(t, base) && strings.HasSuffix(t, ref)
	}
	return ref == t
}

// leaf validates a scalar, bytes, cid-link, blob or unknown value with
// indigo's schema types, and says what is wrong in the reference's words.
func (w *walker) leaf(def any, d any) error {
	switch s := def.(type) {
	case lexicon.SchemaString:
		lang := s.Format != nil && *s.Format == "language"
		if lang {
			s.Format = nil // indigo's language parser is not the reference's
		}
		if err := s.Validate(d, flags); err != nil {
			return w.fail(stringProblem(s, d, err))
		}
		if lang {
			if err := langtag.Check(d.(string)); err != nil {
				return w.fail("must be a well-formed BCP 47 language tag")
			}
		}
	case lexicon.SchemaInteger:
		if err := s.Validate(d); err != nil {
			return w.fail(integerProblem(s, d, err))
		}
	case lexicon.SchemaBoolean:
		if err := s.Validate(d); err != nil {
			if _, ok := d.(bool); ok && s.Const != nil {
				return w.fail(fmt.Sprintf("must be %v", *s.Const))
			}
			return w.fail("must be a boolean")
		}
	case lexicon.SchemaBytes:
		if err := s.Validate(d); err != nil {
			return w.fail(bytesProblem(s, d, err))
		}
	case lexicon.SchemaCIDLink:
		if err := s.Validate(d); err != nil {
			return w.fail("must be a CID")
		}
	case lexicon.SchemaBlob:
		if err := s.Validate(d, flags); err != nil {
			return w.blobProblem(s, d, err)
		}
	case lexicon.SchemaUnknown:
		if err := s.Validate(d); err != nil {
			return w.fail("must be an object")
		}
	case lexicon.SchemaToken:
		return w.fail("can not be a token")
	default:
		return w.fail(fmt.Sprintf("has an unsupported schema type %T", def))
	}
	return nil
}

// stringProblem says which constraint of s the string d breaks, asking
// indigo about one constraint at a time; err is indigo's verdict on all.
func stringProblem(s lexicon.SchemaString, d any, err error) string {
	if _, ok := d.(string); !ok {
		return "must be a string"
	}
	fails := func(only lexicon.SchemaString) bool {
		only.Type = "string"
		return only.Validate(d, flags) != nil
	}
	switch {
	case s.Const != nil && fails(lexicon.SchemaString{Const: s.Const}):
		return fmt.Sprintf("must be %s", *s.Const)
	case s.MaxLength != nil && fails(lexicon.SchemaString{MaxLength: s.MaxLength}):
		return fmt.Sprintf("must not be longer than %d characters", *s.MaxLength)
	case s.MinLength != nil && fails(lexicon.SchemaString{MinLength: s.MinLength}):
		return fmt.Sprintf("must not be shorter than %d characters", *s.MinLength)
	case len(s.Enum) != 0 && fails(lexicon.SchemaString{Enum: s.Enum}):
		return fmt.Sprintf("must be one of (%s)", strings.Join(s.Enum, "|"))
	case s.MaxGraphemes != nil && fails(lexicon.SchemaString{MaxGraphemes: s.MaxGraphemes}):
		return fmt.Sprintf("must not be longer than %d graphemes", *s.MaxGraphemes)
	case s.MinGraphemes != nil && fails(lexicon.SchemaString{MinGraphemes: s.MinGraphemes}):
		return fmt.Sprintf("must not be shorter than %d graphemes", *s.MinGraphemes)
	}
	if s.Format != nil {
		switch f := *s.Format; f {
		case "at-identifier":
			return "must be a valid did or a handle"
		case "uri":
			return "must be a uri"
		case "cid":
			return "must be a cid string"
		case "tid":
			return "must be a valid TID"
		case "record-key":
			return "must be a valid Record Key"
		case "datetime":
			return "must be a valid atproto datetime (RFC 3339 with a timezone)"
		default:
			return "must be a valid " + f
		}
	}
	return err.Error()
}

func integerProblem(s lexicon.SchemaInteger, d any, err error) string {
	v64, ok := d.(int64)
	if !ok {
		return "must be an integer"
	}
	v := int(v64)
	switch {
	case s.Const != nil && v != *s.Const:
		return fmt.Sprintf("must be %d", *s.Const)
	case s.Maximum != nil && v > *s.Maximum:
		return fmt.Sprintf("can not be greater than %d", *s.Maximum)
	case s.Minimum != nil && v < *s.Minimum:
		return fmt.Sprintf("can not be less than %d", *s.Minimum)
	case len(s.Enum) != 0 && !slices.Contains(s.Enum, v):
		vals := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			vals[i] = strconv.Itoa(e)
		}
		return fmt.Sprintf("must be one of (%s)", strings.Join(vals, "|"))
	}
	return err.Error()
}

func bytesProblem(s lexicon.SchemaBytes, d any, err error) string {
	v, ok := d.(atdata.Bytes)
	if !ok {
		return "must be a byte array"
	}
	if s.MaxLength != nil && len(v) > *s.MaxLength {
		return fmt.Sprintf("must not be larger than %d bytes", *s.MaxLength)
	}
	if s.MinLength != nil && len(v) < *s.MinLength {
		return fmt.Sprintf("must not be smaller than %d bytes", *s.MinLength)
	}
	return err.Error()
}

func (w *walker) blobProblem(s lexicon.SchemaBlob, d any, err error) error {
	v, ok := d.(atdata.Blob)
	switch {
	case !ok:
		return w.fail("should be a blob ref")
	case v.Size < 0:
		return w.fail("must be a blob ref, not a legacy blob")
	case s.MaxSize != nil && v.Size > int64(*s.MaxSize):
		return w.fail(fmt.Sprintf("must not be larger than %d bytes", *s.MaxSize))
	case len(s.Accept) > 0:
		return w.failAt("mimeType", fmt.Sprintf("must be one of (%s)", strings.Join(s.Accept, "|")))
	}
	return w.fail(err.Error())
}
