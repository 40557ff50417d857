package proxy

import (
	"errors"

	"github.com/labstack/echo/v4"
)

// ErrNoAppView: PassThrough has nowhere to send a call (no atproto-proxy
// header and no AppView configured).
var ErrNoAppView = errors.New("proxy: no AppView configured")

// PassThrough forwards the request being served, as it came and without
// credentials, to the service its atproto-proxy header names or else to
// the AppView, and relays the answer: the reference's pipethrough of reads
// it cannot answer itself (getRecord of a repo hosted elsewhere). It
// returns ErrNoAppView, having sent nothing, when there is nowhere to send
// it.
func (p *Proxy) PassThrough(c echo.Context) error {
	nsid, err := methodOf(c)
	if err != nil {
		return err
	}
	header := c.Request().Header.Get(HeaderProxy)
	var t *Target
	switch av := p.cfg.AppView; {
	case header != "":
		if t, err = p.route(c.Request().Context(), header, nsid); err != nil {
			return err
		}
	case av != nil:
		t = &Target{DID: av.DID, ServiceID: ServiceAppView, URL: av.URL}
	default:
		return ErrNoAppView
	}
	up, err := p.send(c, t, nsid, "", modeStream)
	if err != nil {
		return err
	}
	defer up.close()
	if up.resp.StatusCode >= 400 {
		return up.failure()
	}
	return p.relay(c, up)
}
