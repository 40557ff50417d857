package auth

import (
	"fmt"
	"sort"
	"strings"
)

// Scope is the "scope" claim of a session token (auth-scope.ts).
type Scope string

// The scopes of the reference PDS (auth-scope.ts AuthScope).
const (
	// ScopeAccess: a session opened with the account password. Full access.
	ScopeAccess Scope = "com.atproto.access"
	// ScopeRefresh: the only scope of refresh tokens; never accepted as
	// access.
	ScopeRefresh Scope = "com.atproto.refresh"
	// ScopeAppPass: a session opened with an ordinary app password.
	ScopeAppPass Scope = "com.atproto.appPass"
	// ScopeAppPassPrivileged: a session opened with a privileged app
	// password (may also use chat and createAccount service auth).
	ScopeAppPassPrivileged Scope = "com.atproto.appPassPrivileged"
	// ScopeSignupQueued: an account waiting in the signup queue (an
	// entryway scope); it may call only [signupQueuedMethods].
	ScopeSignupQueued Scope = "com.atproto.signupQueued"
	// ScopeTakendown: a session of a taken-down account that logged in with
	// allowTakendown; it may call only [takendownMethods].
	ScopeTakendown Scope = "com.atproto.takendown"
)

// Valid reports whether s is one of the six scopes above.
func (s Scope) Valid() bool {
	switch s {
	case ScopeAccess, ScopeRefresh, ScopeAppPass, ScopeAppPassPrivileged,
		ScopeSignupQueued, ScopeTakendown:
		return true
	}
	return false
}

// IsAccess reports whether s is a scope an access token may carry (every
// known scope but [ScopeRefresh]).
func (s Scope) IsAccess() bool { return s.Valid() && s != ScopeRefresh }

// IsFull reports whether s has full access (ACCESS_FULL: account password
// sessions only).
func (s Scope) IsFull() bool { return s == ScopeAccess }

// IsPrivileged reports whether s may use privileged methods
// (ACCESS_PRIVILEGED: full access or a privileged app password).
func (s Scope) IsPrivileged() bool {
	return s == ScopeAccess || s == ScopeAppPassPrivileged
}

// IsStandard reports whether s may use ordinary methods (ACCESS_STANDARD:
// full access or any app password).
func (s Scope) IsStandard() bool {
	return s == ScopeAccess || s == ScopeAppPassPrivileged || s == ScopeAppPass
}

// SessionScope is the access scope of a session opened with the account
// password (appPassword false) or an app password (appPassword true,
// privileged as recorded for it); formatScope in helpers/auth.ts. A
// taken-down account's session is [ScopeTakendown] whatever the password.
func SessionScope(appPassword, privileged, takendown bool) Scope {
	switch {
	case takendown:
		return ScopeTakendown
	case !appPassword:
		return ScopeAccess
	case privileged:
		return ScopeAppPassPrivileged
	default:
		return ScopeAppPass
	}
}

// Access levels of XRPC methods.
type AccessLevel int

const (
	// AccessStandard: any of access, appPassPrivileged, appPass (the
	// reference's default, ACCESS_STANDARD).
	AccessStandard AccessLevel = iota
	// AccessPrivileged: access or appPassPrivileged (PRIVILEGED_METHODS in
	// pipethrough.ts: chat.bsky.* and createAccount, which the reference
	// checks when proxying and in getServiceAuth).
	AccessPrivileged
	// AccessFull: access only (methods declared with scopes: ACCESS_FULL:
	// credential, email, account-status and PLC management).
	AccessFull
)

func (l AccessLevel) String() string {
	switch l {
	case AccessStandard:
		return "standard"
	case AccessPrivileged:
		return "privileged"
	case AccessFull:
		return "full"
	}
	return fmt.Sprintf("AccessLevel(%d)", int(l))
}

// fullAccessMethods are the reference's handlers declared with
// scopes: ACCESS_FULL (api/com/atproto/...). App passwords, privileged or
// not, can never call them.
var fullAccessMethods = lowerSet(
	"com.atproto.identity.requestPlcOperationSignature",
	"com.atproto.identity.signPlcOperation",
	"com.atproto.repo.importRepo",
	"com.atproto.server.activateAccount",
	"com.atproto.server.createAppPassword",
	"com.atproto.server.deactivateAccount",
	"com.atproto.server.getAccountInviteCodes",
	"com.atproto.server.requestAccountDelete",
	"com.atproto.server.requestEmailUpdate",
	"com.atproto.server.updateEmail", // shares requestEmailUpdateAuth
)

// privilegedMethods is PRIVILEGED_METHODS (pipethrough.ts): the chat
// methods and createAccount. An ordinary app password may neither proxy
// them nor get a service-auth token for them.
var privilegedMethods = lowerSet(
	"chat.bsky.actor.deleteAccount",
	"chat.bsky.actor.exportAccountData",
	"chat.bsky.convo.deleteMessageForSelf",
	"chat.bsky.convo.getConvo",
	"chat.bsky.convo.getConvoForMembers",
	"chat.bsky.convo.getLog",
	"chat.bsky.convo.getMessages",
	"chat.bsky.convo.leaveConvo",
	"chat.bsky.convo.listConvos",
	"chat.bsky.convo.muteConvo",
	"chat.bsky.convo.sendMessage",
	"chat.bsky.convo.sendMessageBatch",
	"chat.bsky.convo.unmuteConvo",
	"chat.bsky.convo.updateRead",
	"com.atproto.server.createAccount",
)

// protectedMethods is PROTECTED_METHODS (pipethrough.ts): account
// management that must be called on the PDS directly: never proxied, and
// no service-auth token is issued for them.
var protectedMethods = lowerSet(
	"com.atproto.admin.sendEmail",
	"com.atproto.identity.requestPlcOperationSignature",
	"com.atproto.identity.signPlcOperation",
	"com.atproto.identity.updateHandle",
	"com.atproto.server.activateAccount",
	"com.atproto.server.confirmEmail",
	"com.atproto.server.createAppPassword",
	"com.atproto.server.deactivateAccount",
	"com.atproto.server.getAccountInviteCodes",
	"com.atproto.server.getSession",
	"com.atproto.server.listAppPasswords",
	"com.atproto.server.requestAccountDelete",
	"com.atproto.server.requestEmailConfirmation",
	"com.atproto.server.requestEmailUpdate",
	"com.atproto.server.revokeAppPassword",
	"com.atproto.server.updateEmail",
)

// takendownMethods are the methods whose reference handlers add
// AuthScope.Takendown to their scopes: what a taken-down account may still
// do (read its data, migrate away, deactivate, report).
var takendownMethods = exactSet(
	"app.bsky.actor.getPreferences",
	"com.atproto.identity.requestPlcOperationSignature",
	"com.atproto.identity.signPlcOperation",
	"com.atproto.moderation.createReport",
	"com.atproto.server.deactivateAccount",
	"com.atproto.server.getServiceAuth", // and then only for createAccount: CheckServiceAuthRequest
	"com.atproto.sync.getBlob",
	"com.atproto.sync.getRepo",
	"com.atproto.sync.listBlobs",
)

// signupQueuedMethods are the methods whose reference handlers add
// AuthScope.SignupQueued.
var signupQueuedMethods = exactSet(
	"app.bsky.notification.registerPush",
	"com.atproto.server.getSession",
	"com.atproto.temp.checkSignupQueue",
)

func lowerSet(items ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(items))
	for _, s := range items {
		m[strings.ToLower(s)] = struct{}{}
	}
	return m
}

func exactSet(items ...string) map[string]struct{} {
	m := make(map[string]struct{}, len(items))
	for _, s := range items {
		m[s] = struct{}{}
	}
	return m
}

func inLower(set map[string]struct{}, nsid string) bool {
	_, ok := set[strings.ToLower(nsid)]
	return ok
}

// MethodAccessLevel is the least access level a session needs to call
// method nsid (matching is case-insensitive, like the reference's LxmSet,
// so that case games cannot lower the level).
func MethodAccessLevel(nsid string) AccessLevel {
	switch {
	case inLower(fullAccessMethods, nsid):
		return AccessFull
	case inLower(privilegedMethods, nsid):
		return AccessPrivileged
	}
	return AccessStandard
}

// IsPrivilegedMethod reports whether nsid is in PRIVILEGED_METHODS.
func IsPrivilegedMethod(nsid string) bool { return inLower(privilegedMethods, nsid) }

// IsProtectedMethod reports whether nsid is in PROTECTED_METHODS: never
// proxied, never the lxm of a service-auth token.
func IsProtectedMethod(nsid string) bool { return inLower(protectedMethods, nsid) }

// Satisfies reports whether scope s meets access level l. Only the three
// standard scopes meet any level: takendown and signup-queued sessions
// are handled by [AllowsMethod]'s per-method lists.
func (s Scope) Satisfies(l AccessLevel) bool {
	switch l {
	case AccessFull:
		return s.IsFull()
	case AccessPrivileged:
		return s.IsPrivileged()
	case AccessStandard:
		return s.IsStandard()
	}
	return false
}

// AllowsMethod reports whether an access token of scope s may call (or,
// for a proxied method, have proxied) XRPC method nsid:
//
//   - refresh or unknown scopes: never;
//   - access: everything;
//   - appPassPrivileged: all but the full-access methods;
//   - appPass: all but the full-access and privileged methods;
//   - takendown: only the takendown methods (exact NSID match);
//   - signupQueued: only the signup-queued methods (exact NSID match).
//
// It does not cover OAuth permission sets (pdslog issues no OAuth tokens)
// nor the extra rules of getServiceAuth ([CheckServiceAuthRequest]) or of
// proxying protected methods ([IsProtectedMethod]).
func (s Scope) AllowsMethod(nsid string) bool {
	switch s {
	case ScopeTakendown:
		_, ok := takendownMethods[nsid]
		return ok
	case ScopeSignupQueued:
		_, ok := signupQueuedMethods[nsid]
		return ok
	}
	return s.Satisfies(MethodAccessLevel(nsid))
}

// CheckMethod is AllowsMethod as an error: nil, or ErrInvalidToken ("Bad
// token scope", as the reference answers).
func (s Scope) CheckMethod(nsid string) error {
	if s.AllowsMethod(nsid) {
		return nil
	}
	return fmt.Errorf("%w: bad token scope %q for %s", ErrInvalidToken, string(s), nsid)
}

// The method lists, for checks that the route table declares matching
// credential policies (sorted).
func FullAccessMethods() []string   { return sortedKeys(fullAccessMethods) }
func PrivilegedMethods() []string   { return sortedKeys(privilegedMethods) }
func ProtectedMethods() []string    { return sortedKeys(protectedMethods) }
func TakendownMethods() []string    { return sortedKeys(takendownMethods) }
func SignupQueuedMethods() []string { return sortedKeys(signupQueuedMethods) }

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
