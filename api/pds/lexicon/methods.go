package lexicon

import "github.com/bluesky-social/indigo/atproto/lexicon"

// Method kinds, as lexicons declare them.
const (
	KindQuery        = "query"
	KindProcedure    = "procedure"
	KindSubscription = "subscription"
)

// MethodKind is the kind of XRPC method nsid ("" when no lexicon defines
// it as a method).
func (v *Validator) MethodKind(nsid string) string {
	e := v.defs[nsid]["main"]
	if e == nil {
		return ""
	}
	switch e.def.(type) {
	case lexicon.SchemaQuery:
		return KindQuery
	case lexicon.SchemaProcedure:
		return KindProcedure
	case lexicon.SchemaSubscription:
		return KindSubscription
	}
	return ""
}
