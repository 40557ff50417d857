package oauthcore

import (
	"fmt"
	"slices"
	"strings"

	indigoauth "github.com/bluesky-social/indigo/atproto/auth"
)

// The scopes of the atproto OAuth profile besides granular permissions.
const (
	ScopeAtproto         = "atproto"
	ScopeGeneric         = "transition:generic"
	ScopeChat            = "transition:chat.bsky"
	ScopeEmail           = "transition:email"
	permissionSetsPrefix = "include:"
)

// ScopesSupported is the scopes_supported of the server metadata: the
// fixed scopes; granular permissions (repo:, rpc:, blob:, account:,
// identity:) cannot be enumerated. Permission sets (include:…) are not
// listed because they are not resolved yet.
var ScopesSupported = []string{ScopeAtproto, ScopeGeneric, ScopeChat, ScopeEmail}

// ParseRequestScope validates a requested scope: space-separated, with
// "atproto", each token a fixed scope or a granular permission that
// indigo's atproto/auth parser accepts, no duplicates. Permission sets
// (include:) are refused with invalid_scope: this server does not resolve
// them from published lexicons yet. It returns the tokens, in order.
func ParseRequestScope(scope string) ([]string, error) {
	if scope == "" {
		return nil, InvalidScope(`The "atproto" scope is required`)
	}
	toks := strings.Split(scope, " ")
	seen := map[string]bool{}
	for _, t := range toks {
		switch {
		case t == "":
			return nil, InvalidScope("malformed scope %q", scope)
		case seen[t]:
			return nil, InvalidScope("duplicate scope %q", t)
		case t == "openid":
			return nil, InvalidScope("OpenID Connect is not compatible with atproto")
		case strings.HasPrefix(t, permissionSetsPrefix):
			return nil, InvalidScope("permission sets (%q) are not supported by this server yet", t)
		case t == ScopeAtproto, t == ScopeGeneric, t == ScopeChat, t == ScopeEmail:
		default:
			if _, err := indigoauth.ParsePermissionString(t); err != nil {
				return nil, InvalidScope("invalid scope %q: %v", t, err)
			}
		}
		seen[t] = true
	}
	if !seen[ScopeAtproto] {
		return nil, InvalidScope(`The "atproto" scope is required`)
	}
	return toks, nil
}

// Permissions is what a granted scope allows (the reference's
// ScopePermissionsTransition over ScopePermissions).
type Permissions struct {
	scopes  []string
	perms   []indigoauth.Permission
	generic bool
	chat    bool
	email   bool
}

// NewPermissions parses a granted scope (tokens indigo's parser refuses
// grant nothing).
func NewPermissions(scope string) *Permissions {
	p := &Permissions{}
	for _, t := range strings.Fields(scope) {
		p.scopes = append(p.scopes, t)
		switch t {
		case ScopeGeneric:
			p.generic = true
		case ScopeChat:
			p.chat = true
		case ScopeEmail:
			p.email = true
		case ScopeAtproto:
		default:
			if perm, err := indigoauth.ParsePermissionString(t); err == nil {
				p.perms = append(p.perms, *perm)
			}
		}
	}
	return p
}

// Scope is the granted scope string.
func (p *Permissions) Scope() string { return strings.Join(p.scopes, " ") }

// Has reports whether the scope has token t.
func (p *Permissions) Has(t string) bool { return slices.Contains(p.scopes, t) }

// Generic reports transition:generic (app-password-like access).
func (p *Permissions) Generic() bool { return p.generic }

// Chat reports transition:chat.bsky.
func (p *Permissions) Chat() bool { return p.chat }

// AllowsRepo: action ("create", "update", "delete") on collection.
func (p *Permissions) AllowsRepo(collection, action string) bool {
	if p.generic {
		return true
	}
	for _, perm := range p.perms {
		if perm.Resource != "repo" {
			continue
		}
		actions := perm.Action
		if len(actions) == 0 {
			actions = []string{"create", "update", "delete"}
		}
		if slices.Contains(actions, action) && (slices.Contains(perm.Collection, "*") || slices.Contains(perm.Collection, collection)) {
			return true
		}
	}
	return false
}

// AllowsBlob: uploading a blob of MIME type mime.
func (p *Permissions) AllowsBlob(mime string) bool {
	if p.generic {
		return true
	}
	mime = strings.ToLower(strings.TrimSpace(strings.Split(mime, ";")[0]))
	for _, perm := range p.perms {
		if perm.Resource != "blob" {
			continue
		}
		for _, acc := range perm.Accept {
			if acc == "*/*" || acc == mime {
				return true
			}
			if typ, ok := strings.CutSuffix(acc, "/*"); ok && strings.HasPrefix(mime, typ+"/") {
				return true
			}
		}
	}
	return false
}

// AllowsRPC: calling lxm at service aud ("did#service"; "" when the call
// goes to no particular service, which only aud=* permissions match).
func (p *Permissions) AllowsRPC(aud, lxm string) bool {
	chat := strings.HasPrefix(lxm, "chat.bsky.")
	if p.generic && (lxm == "*" || !chat) {
		return true
	}
	if p.chat && chat {
		return true
	}
	for _, perm := range p.perms {
		if perm.Resource != "rpc" {
			continue
		}
		if (perm.Audience == "*" || (aud != "" && perm.Audience == aud)) &&
			(slices.Contains(perm.Endpoint, "*") || slices.Contains(perm.Endpoint, lxm)) {
			return true
		}
	}
	return false
}

// AllowsAccount: action ("read" or "manage") on attr ("email", "repo").
func (p *Permissions) AllowsAccount(attr, action string) bool {
	if attr == "email" && action == "read" && p.email {
		return true
	}
	for _, perm := range p.perms {
		if perm.Resource != "account" || perm.Attribute != attr {
			continue
		}
		actions := perm.Action
		if len(actions) == 0 {
			actions = []string{"read"}
		}
		if slices.Contains(actions, "manage") || slices.Contains(actions, action) {
			return true
		}
	}
	return false
}

// AllowsIdentity: changing attr ("handle", or "*" for the whole
// identity: PLC operations).
func (p *Permissions) AllowsIdentity(attr string) bool {
	for _, perm := range p.perms {
		if perm.Resource == "identity" && (perm.Attribute == "*" || perm.Attribute == attr) {
			return true
		}
	}
	return false
}

// MissingScope names the permission a refused call needed, as the
// reference's ScopeMissingError does.
func MissingScope(resource, detail string) string { return resource + ":" + detail }

// Item is one permission of a consent page in plain words.
type Item struct {
	Title  string
	Detail string
}

// Describe puts a requested scope's permissions in plain words, in the
// order a person should read them (most far-reaching first).
func Describe(scope string) []Item {
	var out []Item
	toks := strings.Fields(scope)
	has := func(t string) bool { return slices.Contains(toks, t) }
	if has(ScopeAtproto) {
		out = append(out, Item{"Your identity", "See your account's handle and DID (its permanent identifier)."})
	}
	if has(ScopeGeneric) {
		out = append(out, Item{"Full use of your account, like an app password",
			"Create, change and delete any of your posts, likes, follows and other records; upload images and videos; read and change your app preferences; act on your behalf with other services (not direct messages)."})
	}
	if has(ScopeChat) {
		out = append(out, Item{"Your direct messages", "Read and send your Bluesky direct messages."})
	}
	if has(ScopeEmail) {
		out = append(out, Item{"Your email address", "See the email address of your account and whether it is confirmed."})
	}
	for _, t := range toks {
		perm, err := indigoauth.ParsePermissionString(t)
		if err != nil {
			continue
		}
		out = append(out, describePermission(perm))
	}
	return out
}

func describePermission(p *indigoauth.Permission) Item {
	switch p.Resource {
	case "repo":
		actions := p.Action
		if len(actions) == 0 {
			actions = []string{"create", "update", "delete"}
		}
		var verbs []string
		for _, a := range actions {
			verbs = append(verbs, map[string]string{"create": "create", "update": "change", "delete": "delete"}[a])
		}
		what := "any kind of record"
		if !slices.Contains(p.Collection, "*") {
			what = "records of type " + strings.Join(p.Collection, ", ")
		}
		return Item{"Records in your repository", fmt.Sprintf("%s %s.", capitalize(joinWords(verbs)), what)}
	case "blob":
		kinds := "any kind"
		if !slices.Contains(p.Accept, "*/*") {
			kinds = strings.Join(p.Accept, ", ")
		}
		return Item{"Uploads", fmt.Sprintf("Upload files (%s) to your account.", kinds)}
	case "rpc":
		methods := "any method"
		if !slices.Contains(p.Endpoint, "*") {
			methods = strings.Join(p.Endpoint, ", ")
		}
		svc := "any service"
		if p.Audience != "*" {
			svc = p.Audience
		}
		return Item{"Requests to services", fmt.Sprintf("Call %s on %s, signed as you.", methods, svc)}
	case "account":
		action := "read"
		if slices.Contains(p.Action, "manage") {
			action = "manage"
		}
		switch {
		case p.Attribute == "email" && action == "read":
			return Item{"Your email address", "See the email address of your account."}
		case p.Attribute == "email":
			return Item{"Your email address", "See and confirm the email address of your account."}
		case p.Attribute == "repo" && action == "manage":
			return Item{"Your whole repository", "Import a repository into your account, replacing records."}
		}
		return Item{"Your account", fmt.Sprintf("%s your account's %s.", capitalize(action), p.Attribute)}
	case "identity":
		if p.Attribute == "handle" {
			return Item{"Your handle", "Change your handle (your @name)."}
		}
		return Item{"Your identity", "Change your handle and your DID document, including the keys that control your account. Only grant this to a tool you trust completely."}
	}
	return Item{p.Resource, p.ScopeString()}
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func joinWords(w []string) string {
	switch len(w) {
	case 0:
		return ""
	case 1:
		return w[0]
	}
	return strings.Join(w[:len(w)-1], ", ") + " and " + w[len(w)-1]
}
