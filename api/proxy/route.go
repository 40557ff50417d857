package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/pdslog/pdslog/api/pds/identity"
	"github.com/pdslog/pdslog/api/pds/ssrf"
	"github.com/pdslog/pdslog/api/xrpc"
)

// route finds where a call to nsid goes: the service the atproto-proxy
// header names, or (header "") the method's default service. The
// configured AppView named by its own reference is not resolved, as the
// reference special-cases it.
func (p *Proxy) route(ctx context.Context, header string, nsid syntax.NSID) (*Target, error) {
	if header == "" {
		if t := p.defaultRoute(nsid); t != nil {
			return t, nil
		}
		return nil, xrpc.MethodNotImplemented(nsid.String())
	}
	did, id, err := ParseProxyHeader(header)
	if err != nil {
		return nil, xrpc.InvalidRequest("%s", err.Error())
	}
	if av := p.cfg.AppView; av != nil && did == av.DID && id == ServiceAppView {
		return &Target{DID: did, ServiceID: id, URL: av.URL}, nil
	}
	doc, err := p.resolver.Resolve(ctx, did)
	switch {
	case errors.Is(err, identity.ErrDIDNotFound):
		return nil, xrpc.InvalidRequest("could not resolve proxy did %s: no DID document", did)
	case errors.Is(err, identity.ErrUnsupportedDID):
		return nil, xrpc.InvalidRequest("could not resolve proxy did %s: %v", did, err)
	case errors.Is(err, ssrf.ErrForbiddenAddress):
		// A did:web host inside the network: say no more than "refused".
		p.log.Warn("proxy: SSRF guard refused a DID document fetch", "did", did, "err", err)
		return nil, &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure",
			Message: fmt.Sprintf("could not resolve proxy did %s: refused", did), Err: err}
	case err != nil:
		// Network errors name addresses and resolvers: log them, answer
		// without them.
		p.log.Warn("proxy: resolving a service DID failed", "did", did, "err", err)
		return nil, &xrpc.Error{Status: http.StatusBadGateway, Name: "UpstreamFailure",
			Message: fmt.Sprintf("could not resolve proxy did %s", did), Err: err}
	}
	u, ok := identity.ServiceEndpoint(doc, id)
	if !ok {
		return nil, xrpc.InvalidRequest("could not resolve proxy did service url: the DID document of %s has no service #%s with an http(s) endpoint", did, id)
	}
	return &Target{DID: did, ServiceID: id, URL: u.String()}, nil
}

// errProxyHeader is a malformed atproto-proxy header.
type errProxyHeader string

func (e errProxyHeader) Error() string { return string(e) }

// ParseProxyHeader splits an atproto-proxy header value, "DID#service_id",
// with the reference's checks and messages.
func ParseProxyHeader(v string) (syntax.DID, string, error) {
	i := strings.IndexByte(v, '#')
	switch {
	case i == 0:
		return "", "", errProxyHeader("no did specified in proxy header")
	case i < 0 || i == len(v)-1:
		return "", "", errProxyHeader("no service id specified in proxy header")
	case strings.IndexByte(v[i+1:], '#') >= 0:
		return "", "", errProxyHeader("invalid proxy header format")
	case strings.Contains(v, " "):
		return "", "", errProxyHeader("proxy header cannot contain spaces")
	}
	did, err := syntax.ParseDID(v[:i])
	if err != nil {
		return "", "", errProxyHeader("invalid DID in proxy header: " + err.Error())
	}
	return did, v[i+1:], nil
}
