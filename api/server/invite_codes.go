package server

import (
	"crypto/rand"
	"encoding/base32"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
)

// newInviteCode returns a code in the reference's shape: host-xxxxx-xxxxx.
func newInviteCode(hostname string) string {
	var b [7]byte
	_, _ = rand.Read(b[:])
	enc := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	return strings.ReplaceAll(hostname, ".", "-") + "-" + enc[:5] + "-" + enc[5:10]
}

// CreateInviteCode serves com.atproto.server.createInviteCode (admin).
func (a *Admin) CreateInviteCode(c echo.Context) error {
	if err := a.check(c); err != nil {
		return err
	}
	var in struct {
		UseCount   int    `json:"useCount"`
		ForAccount string `json:"forAccount"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	codes, err := a.createCodes(c, 1, in.UseCount, in.ForAccount)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"code": codes[0]})
}

// CreateInviteCodes serves com.atproto.server.createInviteCodes (admin).
func (a *Admin) CreateInviteCodes(c echo.Context) error {
	if err := a.check(c); err != nil {
		return err
	}
	var in struct {
		CodeCount   int      `json:"codeCount"`
		UseCount    int      `json:"useCount"`
		ForAccounts []string `json:"forAccounts"`
	}
	if err := xrpc.BindJSON(c, 150<<10, &in); err != nil {
		return err
	}
	if in.CodeCount <= 0 {
		in.CodeCount = 1
	}
	if in.CodeCount > 1000 {
		return xrpc.InvalidRequest("codeCount must be at most 1000")
	}
	type accountCodes struct {
		Account string   `json:"account"`
		Codes   []string `json:"codes"`
	}
	targets := in.ForAccounts
	if len(targets) == 0 {
		targets = []string{"admin"}
	}
	out := struct {
		Codes []accountCodes `json:"codes"`
	}{}
	for _, t := range targets {
		codes, err := a.createCodes(c, in.CodeCount, in.UseCount, t)
		if err != nil {
			return err
		}
		out.Codes = append(out.Codes, accountCodes{Account: t, Codes: codes})
	}
	return c.JSON(http.StatusOK, out)
}

func (a *Admin) createCodes(c echo.Context, n, uses int, forAccount string) ([]string, error) {
	if uses <= 0 {
		return nil, xrpc.InvalidRequest("useCount must be positive")
	}
	if forAccount == "" {
		forAccount = "admin"
	}
	s := a.Sessions
	now := s.now().UTC().Format(time.RFC3339)
	codes := make([]string, n)
	evs := make([]*eventlog.Event, n)
	for i := range n {
		codes[i] = newInviteCode(a.Hostname)
		ev, err := events.New(a.ServiceDID, &events.InviteCreated{Code: codes[i], Available: uses,
			ForAccount: forAccount, CreatedBy: "admin", CreatedAt: now})
		if err != nil {
			return nil, err
		}
		evs[i] = ev
	}
	if err := s.append(c.Request().Context(), evs...); err != nil {
		return nil, err
	}
	return codes, nil
}
