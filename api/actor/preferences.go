package actor

import (
	"embed"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/lexicon"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/proxy"
)

// Handlers serve the preference methods.
type Handlers struct {
	PDS *pds.PDS
	// Proxy, if set, forwards calls whose atproto-proxy header names
	// another AppView.
	Proxy *proxy.Proxy
}

func (h *Handlers) now() time.Time { return h.PDS.Now() }

// Preference types with special rules (the reference's preference/util.ts).
const (
	// Namespace is the only preference namespace served.
	Namespace = "app.bsky"
	// typePersonalDetails may be read and written by full sessions only.
	typePersonalDetails = "app.bsky.actor.defs#personalDetailsPref"
	// typeDeclaredAge is derived from the personal details on read and
	// never stored.
	typeDeclaredAge = "app.bsky.actor.defs#declaredAgePref"
)

// MaxPutBody is the reference's JSON body limit: 150 KiB.
const MaxPutBody = 150 << 10

// inNamespace reports whether a preference $type is in the namespace.
func inNamespace(t string) bool { return t == Namespace || strings.HasPrefix(t, Namespace+".") }

// allowed reports whether a session with (full) or without full access may
// see and set preferences of type t.
func allowed(t string, full bool) bool { return full || t != typePersonalDetails }

//go:embed lexicons
var lexicons embed.FS

// inputType names the record type whose one field is the preferences
// array: indigo's validator checks records, so the input is checked as
// one.
const inputType = "dev.pdslog.internal.preferencesInput"

var catalog = sync.OnceValues(func() (*lexicon.BaseCatalog, error) {
	cat := lexicon.NewBaseCatalog()
	if err := cat.LoadEmbedFS(lexicons); err != nil {
		return nil, fmt.Errorf("actor: load lexicons: %w", err)
	}
	var sf lexicon.SchemaFile
	def := `{"lexicon":1,"id":"` + inputType + `","defs":{"main":{"type":"record","key":"any","record":{"type":"object",
		"required":["preferences"],"properties":{"preferences":{"type":"ref","ref":"app.bsky.actor.defs#preferences"}}}}}}`
	if err := json.Unmarshal([]byte(def), &sf); err != nil {
		return nil, fmt.Errorf("actor: input schema: %w", err)
	}
	if err := cat.AddSchemaFile(sf); err != nil {
		return nil, fmt.Errorf("actor: input schema: %w", err)
	}
	return cat, nil
})

// validate checks preferences (atproto data, as atdata parses it) against
// the app.bsky.actor.defs#preferences lexicon.
func validate(prefs []any) error {
	cat, err := catalog()
	if err != nil {
		return err
	}
	return lexicon.ValidateRecord(cat, map[string]any{"$type": inputType, "preferences": prefs}, inputType, 0)
}

// ageAt is the age at now of someone born at birthDate (an atproto
// datetime or a plain date), in whole years; ok is false if it does not
// parse.
func ageAt(birthDate string, now time.Time) (int, bool) {
	var born time.Time
	var err error
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02"} {
		if born, err = time.Parse(layout, birthDate); err == nil {
			break
		}
	}
	if err != nil {
		return 0, false
	}
	born, now = born.UTC(), now.UTC()
	age := now.Year() - born.Year()
	if now.Month() < born.Month() || (now.Month() == born.Month() && now.Day() < born.Day()) {
		age--
	}
	return age, true
}
