package bench

import (
	"context"
	crand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// account is one of the run's accounts, as the state file keeps it.
type account struct {
	DID        string `json:"did"`
	Handle     string `json:"handle"`
	Password   string `json:"password"`
	AccessJwt  string `json:"accessJwt"`
	RefreshJwt string `json:"refreshJwt"`

	mu    sync.Mutex
	rkeys []string // recent records, for reads
}

func (a *account) remember(rkey string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.rkeys) >= knownPerRepo {
		a.rkeys = a.rkeys[1:]
	}
	a.rkeys = append(a.rkeys, rkey)
}

func (a *account) pick(r *rand.Rand) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.rkeys) == 0 {
		return ""
	}
	return a.rkeys[r.IntN(len(a.rkeys))]
}

// rkeyOf is the record key of an at:// URI.
func rkeyOf(uri string) string { return uri[strings.LastIndexByte(uri, '/')+1:] }

// stateFile is the Config.State file.
type stateFile struct {
	Target   string     `json:"target"`
	Accounts []*account `json:"accounts"`
}

// loadState reads the state file's accounts for target: none when the file
// does not exist or holds another target's.
func loadState(path, target string) (*stateFile, error) {
	st := &stateFile{}
	if data, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(data, st); err != nil {
			return nil, fmt.Errorf("bench: state file %s: %w", path, err)
		}
		if st.Target != target {
			st = &stateFile{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("bench: state file: %w", err)
	}
	st.Target = target
	return st, nil
}

func (st *stateFile) save(path string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
		return fmt.Errorf("bench: state file: %w", err)
	}
	return os.Rename(path+".tmp", path)
}

// setupAccounts reuses the state file's accounts for this target, creates
// the rest, and seeds each with a few records when the mix reads.
func (b *runner) setupAccounts(ctx context.Context) error {
	st, err := loadState(b.cfg.State, b.cfg.Target)
	if err != nil {
		return err
	}
	st.Accounts = b.refreshSessions(ctx, st.Accounts)
	if err := b.createAccounts(ctx, st); err != nil {
		return err
	}
	if err := st.save(b.cfg.State); err != nil {
		return err
	}
	b.accts = st.Accounts[:b.cfg.Accounts]
	if err := b.each(ctx, len(b.accts), b.seed); err != nil {
		return err
	}
	b.ackedCommits.Store(0)
	return nil
}

// refreshSessions refreshes the sessions of the accounts this run uses and
// drops those the target lost; the rest are kept as they are.
func (b *runner) refreshSessions(ctx context.Context, accts []*account) []*account {
	var kept []*account
	for _, a := range accts {
		if len(kept) == b.cfg.Accounts {
			kept = append(kept, a)
			continue
		}
		if err := b.login(ctx, a); err != nil {
			fmt.Fprintf(b.stderr, "bench: dropping account %s from the state file: %v\n", a.DID, err)
			continue
		}
		kept = append(kept, a)
	}
	return kept
}

// createAccounts creates the accounts st lacks, appending each to it; if
// one fails, st is saved with those made before.
func (b *runner) createAccounts(ctx context.Context, st *stateFile) error {
	need := b.cfg.Accounts - min(len(st.Accounts), b.cfg.Accounts)
	if need == 0 {
		return nil
	}
	invite, err := b.invite(ctx, need)
	if err != nil {
		return err
	}
	var made atomic.Int64
	stop := b.reportProgress(func(time.Duration) string {
		return fmt.Sprintf("bench: accounts: %d of %d created", made.Load(), need)
	})
	for range need {
		a, err := b.createAccount(ctx, invite)
		if err != nil {
			stop()
			_ = st.save(b.cfg.State) // keep the accounts made before the failure
			return err
		}
		st.Accounts = append(st.Accounts, a)
		made.Add(1)
	}
	stop()
	return nil
}

// seed remembers the newest records of account i for reads, and writes a
// few if it has none (Records writes them instead, at Concurrency).
func (b *runner) seed(ctx context.Context, i int) error {
	seed := seedRecords
	if b.cfg.Records >= seed {
		seed = 0
	}
	a := b.accts[i]
	r := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
	var out struct {
		Records []struct {
			URI string `json:"uri"`
		} `json:"records"`
	}
	if err := b.xrpc(ctx, "GET", "com.atproto.repo.listRecords", url.Values{"repo": {a.DID},
		"collection": {"app.bsky.feed.post"}, "limit": {"100"}}, "", nil, &out); err != nil {
		return fmt.Errorf("bench: listRecords %s: %w", a.DID, err)
	}
	for _, rec := range out.Records {
		a.remember(rkeyOf(rec.URI))
	}
	for range seed - min(len(out.Records), seed) {
		if err := b.call(ctx, r, opCreateRecord, a); err != nil {
			return fmt.Errorf("bench: seeding %s: %w", a.DID, err)
		}
	}
	return nil
}

func (b *runner) login(ctx context.Context, a *account) error {
	var out struct{ AccessJwt, RefreshJwt string }
	err := b.xrpc(ctx, "POST", "com.atproto.server.refreshSession", nil, a.RefreshJwt, nil, &out)
	if err != nil {
		err = b.xrpc(ctx, "POST", "com.atproto.server.createSession", nil, "", map[string]any{
			"identifier": a.DID, "password": a.Password}, &out)
	}
	if err != nil {
		return err
	}
	a.AccessJwt, a.RefreshJwt = out.AccessJwt, out.RefreshJwt
	return nil
}

// invite learns the handle domain to sign up under and returns an invite
// code good for n accounts, or "" when the target does not require one.
func (b *runner) invite(ctx context.Context, n int) (string, error) {
	var desc struct {
		InviteCodeRequired   bool     `json:"inviteCodeRequired"`
		AvailableUserDomains []string `json:"availableUserDomains"`
	}
	if err := b.xrpc(ctx, "GET", "com.atproto.server.describeServer", nil, "", nil, &desc); err != nil {
		return "", fmt.Errorf("bench: describeServer: %w", err)
	}
	if len(desc.AvailableUserDomains) == 0 {
		return "", errors.New("bench: the target offers no handle domain to sign up under")
	}
	b.domain = desc.AvailableUserDomains[0]
	if !desc.InviteCodeRequired {
		return "", nil
	}
	if b.cfg.AdminPassword == "" {
		return "", ErrInviteRequired
	}
	var out struct{ Code string }
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+b.cfg.AdminPassword))
	if err := b.xrpc(ctx, "POST", "com.atproto.server.createInviteCode", nil, basic, map[string]any{"useCount": n}, &out); err != nil {
		return "", fmt.Errorf("bench: createInviteCode: %w", err)
	}
	return out.Code, nil
}

func (b *runner) createAccount(ctx context.Context, invite string) (*account, error) {
	var raw [6]byte
	if _, err := crand.Read(raw[:]); err != nil {
		return nil, err
	}
	var pw [12]byte
	if _, err := crand.Read(pw[:]); err != nil {
		return nil, err
	}
	id := hex.EncodeToString(raw[:])
	domain := b.domain
	if !strings.HasPrefix(domain, ".") {
		domain = "." + domain
	}
	a := &account{Handle: "bench-" + id + domain, Password: hex.EncodeToString(pw[:])}
	in := map[string]any{"handle": a.Handle, "email": "bench-" + id + "@example.com", "password": a.Password}
	if invite != "" {
		in["inviteCode"] = invite
	}
	var out struct{ DID, AccessJwt, RefreshJwt string }
	if err := b.xrpc(ctx, "POST", "com.atproto.server.createAccount", nil, "", in, &out); err != nil {
		return nil, fmt.Errorf("bench: createAccount: %w", err)
	}
	a.DID, a.AccessJwt, a.RefreshJwt = out.DID, out.AccessJwt, out.RefreshJwt
	return a, nil
}
