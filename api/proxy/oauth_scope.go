package proxy

import (
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

// DefaultRef is the service ("did#id") the method nsid goes to without
// an atproto-proxy header, or "" when none is configured: the aud of the
// rpc: permission an OAuth caller needs.
func (p *Proxy) DefaultRef(nsid string) string {
	n, err := syntax.ParseNSID(nsid)
	if err != nil {
		return ""
	}
	if t := p.defaultRoute(n); t != nil {
		return t.Ref()
	}
	return ""
}

// checkOAuthScope refuses an OAuth caller whose scope does not allow
// calling nsid at target t (rpc:<nsid>?aud=<t>), as the reference's
// pipethrough does with permissions.assertRpc.
func checkOAuthScope(c echo.Context, t *Target, nsid syntax.NSID) error {
	caller := xrpc.GetCaller(c)
	if caller == nil || caller.OAuth == nil {
		return nil
	}
	if !caller.OAuth.AllowsRPC(t.Ref(), nsid.String()) {
		return xrpc.ScopeMissing("rpc:" + nsid.String() + "?aud=" + t.Ref())
	}
	return nil
}
