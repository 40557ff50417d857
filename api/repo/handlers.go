package repo

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/api/pds/commit"
	"github.com/pdslog/pdslog/api/ratelimit"
	"github.com/pdslog/pdslog/api/xrpc"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/projections/accounts"
)

// Body limits, as the reference: record writes 1,000,000 bytes of JSON.
const MaxRecordBody = 1_000_000

// Handlers serves com.atproto.repo.*.
type Handlers struct {
	PDS *pds.PDS
	// Limiter, if set, charges each commit's points (create 3, update 2,
	// delete 1) against the account's hourly and daily budgets.
	Limiter *ratelimit.WriteLimiter
	// Privileged reports whether the caller may read did's repo whatever
	// its status (its owner or the admin), and refuses basic credentials
	// that are not the admin's: the sync methods' rule
	// (sync.Handlers.Privileged), required.
	Privileged func(c echo.Context, did syntax.DID) (bool, error)
	// MaxImportSize bounds an importRepo body (PDS_MAX_REPO_IMPORT_SIZE);
	// 0 means pds.DefaultMaxImportSize.
	MaxImportSize int64
	// Elsewhere, if set, answers getRecord for repos this server does not
	// host (foreign.go).
	Elsewhere PassThrough
}

// mayRead reports whether the caller may read a's repo: anyone while it is
// active, its owner and the admin whatever its status. Basic credentials
// that are not the admin's are refused (401) whatever the repo's status,
// as the sync methods do.
func (h *Handlers) mayRead(c echo.Context, a *accounts.Account) (bool, error) {
	priv, err := h.Privileged(c, a.DID)
	return priv || a.Active, err
}

// rkeyClock makes the record keys of creates that do not name one.
var rkeyClock = syntax.NewTIDClock(0)

// resolveRepo turns a repo parameter (handle or DID) into a hosted account.
func (h *Handlers) resolveRepo(ctx context.Context, raw string) (*accounts.Account, error) {
	id, err := xrpc.ParseAtIdentifier("repo", raw)
	if err != nil {
		return nil, err
	}
	var a *accounts.Account
	if did, err := id.AsDID(); err == nil {
		a, err = h.PDS.Accounts.Get(ctx, did)
		if err != nil && !errors.Is(err, accounts.ErrNotFound) {
			return nil, err
		}
	} else {
		handle, _ := id.AsHandle()
		a, err = h.PDS.Accounts.ByHandle(ctx, handle)
		if err != nil && !errors.Is(err, accounts.ErrNotFound) {
			return nil, err
		}
	}
	if a == nil {
		return nil, xrpc.InvalidRequest("Could not find repo: %s", raw)
	}
	return a, nil
}

// writableRepo resolves the repo of a write and checks the caller owns it.
func (h *Handlers) writableRepo(c echo.Context, raw string) (syntax.DID, error) {
	caller, err := xrpc.RequireCaller(c)
	if err != nil {
		return "", err
	}
	a, err := h.resolveRepo(c.Request().Context(), raw)
	if err != nil {
		return "", err
	}
	if a.DID != caller.DID {
		return "", xrpc.AuthRequired("cannot write to another account's repo")
	}
	return a.DID, nil
}

// recordValue renders stored DAG-CBOR as atproto JSON.
func recordValue(data []byte) (map[string]any, error) {
	return atdata.UnmarshalCBOR(data)
}

// parseRecord parses a record's JSON into atproto data.
func parseRecord(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, xrpc.InvalidRequest("missing record")
	}
	rec, err := atdata.UnmarshalJSON(raw)
	if err != nil {
		return nil, xrpc.InvalidRequest("Invalid record: %v", err)
	}
	return rec, nil
}

// apply charges the account's write budget, then commits writes.
func (h *Handlers) apply(c echo.Context, did syntax.DID, writes []commit.Write, swapCommit *cid.Cid) (*pds.WriteResult, error) {
	if err := checkOAuthScope(c, writes); err != nil {
		return nil, err
	}
	if h.Limiter != nil {
		var cr, u, d int
		for _, wr := range writes {
			switch wr.Action {
			case eventlog.ActionCreate:
				cr++
			case eventlog.ActionUpdate:
				u++
			default:
				d++
			}
		}
		dec := h.Limiter.Charge(did, ratelimit.WritePoints(cr, u, d), time.Now())
		if !dec.OK {
			return nil, xrpc.TooManyRequests(c, dec)
		}
		xrpc.RateLimit(c, dec)
	}
	return h.PDS.ApplyWrites(c.Request().Context(), did, writes, swapCommit)
}

// commitMeta is the lexicon's com.atproto.repo.defs#commitMeta.
type commitMeta struct {
	CID string `json:"cid"`
	Rev string `json:"rev"`
}

func metaOf(r *pds.WriteResult) *commitMeta {
	return &commitMeta{CID: r.CID.String(), Rev: r.Rev.String()}
}

// maxJSONBody is the reference's limit for other JSON bodies: 150 KiB.
const maxJSONBody = 150 << 10

// undef is the "must not exist" swap value.
var undef = cid.Undef

// recordRef parses a record's collection and record key.
func recordRef(collRaw, rkeyRaw string) (syntax.NSID, syntax.RecordKey, error) {
	coll, err := xrpc.ParseNSID("collection", collRaw)
	if err != nil {
		return "", "", err
	}
	rkey, err := xrpc.ParseRecordKey("rkey", rkeyRaw)
	if err != nil {
		return "", "", err
	}
	return coll, rkey, nil
}

// writeTarget resolves the repo, collection and record key of a write to
// one record, checking the caller owns the repo.
func (h *Handlers) writeTarget(c echo.Context, repoRaw, collRaw, rkeyRaw string) (syntax.DID, syntax.NSID, syntax.RecordKey, error) {
	did, err := h.writableRepo(c, repoRaw)
	if err != nil {
		return "", "", "", err
	}
	coll, rkey, err := recordRef(collRaw, rkeyRaw)
	return did, coll, rkey, err
}
