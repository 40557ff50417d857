package events

// OAuth authorization server types (api/pds oauth*.go, projections/oauth).
// Bearer secrets (authorization codes, refresh tokens, device cookies) are
// never written: only their SHA-256 (hex), so that neither the log nor a
// projection store hands out a credential. Events of a request not yet
// bound to an account carry the service's DID.
const (
	TypeOAuthRequest       = "oauth.request"         // OAuthRequest (secret: state, PKCE challenge) — DID: the service
	TypeOAuthRequestBound  = "oauth.request.bound"   // OAuthRequestBound — DID: the service
	TypeOAuthRequestEnded  = "oauth.request.ended"   // OAuthRequestEnded — DID: the service
	TypeOAuthCode          = "oauth.code"            // OAuthCode — DID: the account
	TypeOAuthDeviceSignIn  = "oauth.device.sign_in"  // OAuthDeviceSignIn (secret: IP, user agent) — DID: the account
	TypeOAuthDeviceSignOut = "oauth.device.sign_out" // OAuthDeviceSignOut — DID: the account
	TypeOAuthSession       = "oauth.session"         // OAuthSession — DID: the account
	TypeOAuthRefreshed     = "oauth.refreshed"       // OAuthRefreshed — DID: the account
	TypeOAuthRevoked       = "oauth.revoked"         // OAuthRevoked — DID: the account
)

// OAuthClientAuth is how a client authenticated (token_endpoint_auth_method):
// "none", or "private_key_jwt" with the key it signed with, which every
// later request of the session must use again.
type OAuthClientAuth struct {
	Method string `json:"method"`
	KeyID  string `json:"kid,omitempty"`
	JKT    string `json:"jkt,omitempty"` // the assertion key's JWK thumbprint
}

// OAuthRequest is a pushed authorization request (/oauth/par), validated
// against the client's metadata: usable at /oauth/authorize by ID (the
// request_uri's tail) until ExpiresAt.
type OAuthRequest struct {
	ID            string          `json:"id"`
	ClientID      string          `json:"clientId"`
	ClientAuth    OAuthClientAuth `json:"clientAuth"`
	Confidential  bool            `json:"confidential,omitempty"`
	RedirectURI   string          `json:"redirectUri"`
	Scope         string          `json:"scope"`
	State         string          `json:"state,omitempty"`
	CodeChallenge string          `json:"codeChallenge"` // S256 only
	LoginHint     string          `json:"loginHint,omitempty"`
	Prompt        string          `json:"prompt,omitempty"`
	ResponseMode  string          `json:"responseMode,omitempty"` // "query" (default) or "fragment"
	DPoPJKT       string          `json:"dpopJkt,omitempty"`
	CreatedAt     string          `json:"createdAt"` // RFC 3339
	ExpiresAt     string          `json:"expiresAt"`
}

// OAuthRequestBound binds a request to the browser (device) that first
// opened it: only that device may go on with it, for five more minutes.
type OAuthRequestBound struct {
	ID        string `json:"id"`
	Device    string `json:"device"` // SHA-256 of the device id
	ExpiresAt string `json:"expiresAt"`
}

// OAuthRequestEnded ends a request without a code: denied by the user,
// refused, or replayed.
type OAuthRequestEnded struct {
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

// OAuthCode is the user's consent to a request: an authorization code
// (its hash) for the account, usable once at /oauth/token until ExpiresAt,
// with the scope granted.
type OAuthCode struct {
	RequestID string `json:"requestId"`
	CodeHash  string `json:"codeHash"`
	ClientID  string `json:"clientId"`
	Scope     string `json:"scope"`
	Device    string `json:"device"`
	ExpiresAt string `json:"expiresAt"`
}

// OAuthDeviceSignIn signs the account in on a browser (device): the
// account pages and the choice of account at /oauth/authorize use it.
// Remember lists the account on that device for later authorizations.
type OAuthDeviceSignIn struct {
	Device    string `json:"device"` // SHA-256 of the device id
	Remember  bool   `json:"remember,omitempty"`
	At        string `json:"at"`
	UserAgent string `json:"userAgent,omitempty"`
	IP        string `json:"ip,omitempty"`
}

// OAuthDeviceSignOut signs the account out of a device, or of every device
// when Device is "".
type OAuthDeviceSignOut struct {
	Device string `json:"device,omitempty"`
}

// OAuthSession is an OAuth session: a code exchanged for tokens at
// /oauth/token. TokenID is the current access token's jti; RefreshHash the
// current refresh token's hash. The session lives until SessionExpiresAt
// at most, and until ExpiresAt unless refreshed.
type OAuthSession struct {
	ID               string          `json:"id"`
	ClientID         string          `json:"clientId"`
	ClientAuth       OAuthClientAuth `json:"clientAuth"`
	Confidential     bool            `json:"confidential,omitempty"`
	Scope            string          `json:"scope"`
	DPoPJKT          string          `json:"dpopJkt"`
	CodeHash         string          `json:"codeHash"`
	RefreshHash      string          `json:"refreshHash"`
	TokenID          string          `json:"tokenId"`
	Device           string          `json:"device,omitempty"`
	CreatedAt        string          `json:"createdAt"`
	ExpiresAt        string          `json:"expiresAt"`
	SessionExpiresAt string          `json:"sessionExpiresAt"`
}

// OAuthRefreshed rotates a session's tokens: RefreshHash replaces the
// current refresh token (the old one is kept as used: presenting it again
// revokes the session), TokenID the current access token.
type OAuthRefreshed struct {
	ID          string `json:"id"`
	RefreshHash string `json:"refreshHash"`
	TokenID     string `json:"tokenId"`
	At          string `json:"at"`
	ExpiresAt   string `json:"expiresAt"`
}

// OAuthRevoked ends an OAuth session (revocation, sign-out, a replayed
// refresh token or code), or every OAuth session of the account when ID
// is "".
type OAuthRevoked struct {
	ID     string `json:"id,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func (*OAuthRequest) Type() string       { return TypeOAuthRequest }
func (*OAuthRequestBound) Type() string  { return TypeOAuthRequestBound }
func (*OAuthRequestEnded) Type() string  { return TypeOAuthRequestEnded }
func (*OAuthCode) Type() string          { return TypeOAuthCode }
func (*OAuthDeviceSignIn) Type() string  { return TypeOAuthDeviceSignIn }
func (*OAuthDeviceSignOut) Type() string { return TypeOAuthDeviceSignOut }
func (*OAuthSession) Type() string       { return TypeOAuthSession }
func (*OAuthRefreshed) Type() string     { return TypeOAuthRefreshed }
func (*OAuthRevoked) Type() string       { return TypeOAuthRevoked }

func (*OAuthRequest) Secret() bool       { return true }
func (*OAuthRequestBound) Secret() bool  { return false }
func (*OAuthRequestEnded) Secret() bool  { return false }
func (*OAuthCode) Secret() bool          { return false }
func (*OAuthDeviceSignIn) Secret() bool  { return true }
func (*OAuthDeviceSignOut) Secret() bool { return false }
func (*OAuthSession) Secret() bool       { return false }
func (*OAuthRefreshed) Secret() bool     { return false }
func (*OAuthRevoked) Secret() bool       { return false }
