package api

import (
	"errors"
	"net/http"
	"strings"

	indigoauth "github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/golang-jwt/jwt/v5"
	pdsidentity "github.com/pdslog/pdslog/api/pds/identity"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/auth"
	"github.com/pdslog/pdslog/api/xrpc"
)

// policy is the credential rule of a route, declared in the route table;
// the middleware that enforces it is built from it (authenticate).
type policy int

const (
	// none: no credentials are looked at (health, well-known documents,
	// the firehose).
	none policy = iota
	// optional: no credentials needed; an access token, if sent, must be
	// valid for the method and names the caller (reads that answer an owner
	// differently, and proxied methods, which sign for the caller).
	optional
	// access: an access token whose scope allows the method is required
	// (auth.Scope.AllowsMethod: the reference's full-access, privileged,
	// takendown and signup-queued method lists).
	access
	// refresh: a refresh token, which the handler verifies itself
	// (refreshSession, deleteSession).
	refresh
	// admin: HTTP basic admin:PASSWORD (com.atproto.admin.*, invite
	// creation); wrong passwords are throttled per client address
	// (checkAdmin).
	admin
	// optionalOrAdmin: optional, except that HTTP basic credentials are
	// passed to the handler, which reads inactive repos for the admin and
	// refuses any other basic credentials (the sync and repo reads,
	// resolveHandle).
	optionalOrAdmin
	// serviceAuthOptional: no credentials needed; a bearer token, if sent,
	// must be a service-auth JWT for this method, issued to this PDS by the
	// DID it names and signed with its key (createAccount by an account
	// migrating here); the caller is that DID.
	serviceAuthOptional
)

func (p policy) String() string {
	return [...]string{"none", "optional", "access", "refresh", "admin", "optionalOrAdmin", "serviceAuthOptional"}[p]
}

// authenticate returns the middleware that enforces p for method nsid;
// an OAuth token must also satisfy rule.
func (s *Server) authenticate(p policy, nsid string, rule oauthRule) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			hdr := c.Request().Header.Get(echo.HeaderAuthorization)
			switch p {
			case none, refresh:
				return next(c)
			case admin:
				if err := s.checkAdmin(c, hdr); err != nil {
					return adminRefusal(err)
				}
				return next(c)
			case optionalOrAdmin:
				// Basic credentials are the admin's or refused (the
				// handler reads inactive repos for the admin).
				if scheme, _, err := auth.ParseAuthorization(hdr); err == nil && scheme == auth.SchemeBasic {
					if err := s.checkAdmin(c, hdr); err != nil {
						return err
					}
					return next(c)
				}
			case serviceAuthOptional:
				if hdr == "" {
					return next(c)
				}
				did, err := s.verifyServiceAuth(c, hdr, nsid)
				if err != nil {
					return err
				}
				xrpc.SetCaller(c, &xrpc.Caller{DID: did, Scope: ScopeServiceAuth})
				return next(c)
			}
			if hdr == "" {
				if p == access {
					return xrpc.AuthMissing()
				}
				return next(c)
			}
			caller, err := s.verifyAccess(c, hdr, nsid, rule)
			if err != nil {
				return err
			}
			xrpc.SetCaller(c, caller)
			return next(c)
		}
	}
}

// verifyAccess checks an access token for method nsid and returns the
// caller: a session token (Bearer), or an OAuth token (DPoP, with its
// proof) whose scope satisfies rule.
func (s *Server) verifyAccess(c echo.Context, hdr, nsid string, rule oauthRule) (*xrpc.Caller, error) {
	scheme, tok, err := auth.ParseAuthorization(hdr)
	if err == nil && scheme == auth.SchemeDPoP {
		return s.verifyOAuth(c, tok, nsid, rule)
	}
	if err != nil || scheme != auth.SchemeBearer {
		return nil, xrpc.AuthRequired("malformed authorization header")
	}
	claims, err := s.pds.Tokens.VerifyAccessFor(tok, nsid, s.now())
	if err != nil {
		if refusal := s.oauth.BearerRefusal(tok); refusal != nil {
			return nil, refusal
		}
		return nil, tokenError(err)
	}
	if _, err := s.pds.Accounts.Get(c.Request().Context(), claims.DID); err != nil {
		return nil, xrpc.AuthRequired("account not found")
	}
	return &xrpc.Caller{DID: claims.DID, Scope: string(claims.Scope)}, nil
}

// ScopeServiceAuth is the caller scope of a request authenticated by a
// service-auth JWT.
const ScopeServiceAuth = "service-auth"

// verifyServiceAuth checks a service-auth JWT sent to method nsid: issued
// for this PDS (aud), for this method (lxm), unexpired, signed by the key
// in its issuer's DID document. Failures are 401s named as the reference
// names them.
func (s *Server) verifyServiceAuth(c echo.Context, hdr, nsid string) (syntax.DID, error) {
	tok, ok, err := auth.BearerToken(hdr)
	if err != nil || !ok {
		return "", &xrpc.Error{Status: http.StatusUnauthorized, Name: "AuthenticationRequired", Message: "a service-auth bearer token is required"}
	}
	lxm := syntax.NSID(nsid)
	v := &indigoauth.ServiceAuthValidator{Audience: s.pds.Service.DID().String(), Dir: pdsidentity.Indigo(s.pds.Directory)}
	did, err := v.Validate(c.Request().Context(), tok, &lxm)
	if err == nil {
		return did, nil
	}
	name, msg := "BadJwt", "jwt could not be verified"
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		name, msg = "JwtExpired", "jwt expired"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		name, msg = "BadJwtAudience", "jwt audience does not match service did"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		name, msg = "BadJwtSignature", "jwt signature does not match jwt issuer"
	case errors.Is(err, jwt.ErrTokenInvalidClaims) && strings.Contains(err.Error(), "LXM"):
		name, msg = "BadJwtLexiconMethod", "bad jwt lexicon method (\"lxm\"). must match: "+nsid
	}
	return "", &xrpc.Error{Status: http.StatusUnauthorized, Name: name, Message: msg, Err: err}
}

// tokenError renders a token verification failure as the reference does.
func tokenError(err error) error {
	name := auth.XRPCErrorName(err)
	if name == "" {
		name = "InvalidToken"
	}
	msg := "Token could not be verified"
	if name == "ExpiredToken" {
		msg = "Token has expired"
	}
	return &xrpc.Error{Status: http.StatusBadRequest, Name: name, Message: msg, Err: err}
}

// nsidOf is the XRPC method of a /xrpc/ path.
func nsidOf(path string) string {
	nsid, _ := strings.CutPrefix(path, "/xrpc/")
	return nsid
}
