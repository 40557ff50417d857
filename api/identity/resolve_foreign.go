package identity

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/labstack/echo/v4"

	pdsidentity "github.com/pdslog/pdslog/api/pds/identity"
	"github.com/pdslog/pdslog/api/xrpc"
)

// ForeignHandles resolves, for resolveHandle, the handles this server
// does not host: by DNS and the well-known document (Resolver), then, as
// the reference does, by asking the AppView.
type ForeignHandles struct {
	Resolver *pdsidentity.HandleResolver
	// AppViewURL, if set, is asked (com.atproto.identity.resolveHandle,
	// without credentials) when the handle's own DNS and host do not
	// answer.
	AppViewURL string
	// Client asks the AppView; it should carry the SSRF guard.
	Client *http.Client
	// AppViewTimeout bounds the AppView's answer; 0: 3s.
	AppViewTimeout time.Duration
}

func handleNotFound() *xrpc.Error {
	return &xrpc.Error{Status: http.StatusBadRequest, Name: "HandleNotFound", Message: "Unable to resolve handle"}
}

// servesDomain reports whether handle is under one of this server's
// handle domains, or is one (the reference's supportedHandle): such a
// handle is either an account here or nobody's.
func (h *Handlers) servesDomain(handle syntax.Handle) bool {
	lh := strings.ToLower(handle.String())
	for _, d := range h.PDS.Service.HandleDomains {
		if strings.HasSuffix(lh, strings.ToLower(d)) || "."+lh == strings.ToLower(d) {
			return true
		}
	}
	return false
}

// resolveForeign answers resolveHandle for a handle no account here has:
// HandleNotFound under this server's domains; otherwise the handle's DNS
// record or well-known document, then the AppView's answer; HandleNotFound
// (the lexicon's error) when none names a DID.
func (h *Handlers) resolveForeign(c echo.Context, handle syntax.Handle) error {
	if h.servesDomain(handle) || h.Foreign == nil {
		return handleNotFound()
	}
	ctx := c.Request().Context()
	did, err := h.Foreign.Resolver.Resolve(ctx, handle)
	if err == nil {
		return c.JSON(http.StatusOK, resolveHandleOutput{DID: did.String()})
	}
	if !errors.Is(err, pdsidentity.ErrHandleNotFound) {
		h.PDS.Logger().Info("handle resolution failed", "handle", handle, "err", err)
	}
	if h.Foreign.AppViewURL != "" {
		if did, err := h.Foreign.askAppView(ctx, handle); err == nil {
			return c.JSON(http.StatusOK, resolveHandleOutput{DID: did.String()})
		} else {
			h.PDS.Logger().Debug("AppView did not resolve the handle", "handle", handle, "err", err)
		}
	}
	return handleNotFound()
}

// askAppView asks the AppView to resolve handle.
func (f *ForeignHandles) askAppView(ctx context.Context, handle syntax.Handle) (syntax.DID, error) {
	timeout := f.AppViewTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := strings.TrimSuffix(f.AppViewURL, "/") + "/xrpc/com.atproto.identity.resolveHandle?" + url.Values{"handle": {handle.String()}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "pdslog")
	client := f.Client
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return "", errors.New("AppView answered " + resp.Status)
	}
	var out resolveHandleOutput
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out); err != nil {
		return "", err
	}
	return syntax.ParseDID(out.DID)
}
