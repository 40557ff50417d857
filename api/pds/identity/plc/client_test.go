package plc_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/google/go-cmp/cmp"
	"github.com/mr-tron/base58"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/api/pds/identity/plc"
)

// These tests run against a real PLC directory: the reference
// implementation, started by plcserver.

func newClient(t *testing.T) (*plc.Client, context.Context) {
	t.Helper()
	srv := plcserver.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &plc.Client{URL: srv.URL, HTTPClient: &http.Client{Timeout: 10 * time.Second}, UserAgent: "pdslog-test"}, ctx
}

// account is a DID created on the directory, with its keys.
type account struct {
	did      syntax.DID
	genesis  *plc.Op
	rotation atcrypto.PrivateKey
	signing  atcrypto.PrivateKey
}

func createAccount(t *testing.T, ctx context.Context, c *plc.Client, rotation, signing atcrypto.PrivateKey, handle syntax.Handle) account {
	t.Helper()
	did, op, err := plc.CreateGenesis(rotation, []string{didKey(t, rotation)}, didKey(t, signing), handle, "https://pds.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Submit(ctx, did, op); err != nil {
		t.Fatalf("Submit genesis: %v", err)
	}
	return account{did: did, genesis: op, rotation: rotation, signing: signing}
}

// checkResolves resolves did and checks its DID document: the declared
// handle, the atproto signing key and the PDS endpoint.
func checkResolves(t *testing.T, ctx context.Context, c *plc.Client, a account, handle syntax.Handle) {
	t.Helper()
	doc, err := c.Resolve(ctx, a.did)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if doc.DID != a.did {
		t.Errorf("document id = %s, want %s", doc.DID, a.did)
	}
	if d := cmp.Diff([]string{"at://" + handle.String()}, doc.AlsoKnownAs); d != "" {
		t.Errorf("alsoKnownAs (-want +got):\n%s", d)
	}
	ident := identity.ParseIdentity(doc)
	if h, err := ident.DeclaredHandle(); err != nil || h != handle {
		t.Errorf("declared handle = %q, %v; want %q", h, err, handle)
	}
	pub, err := ident.PublicKey()
	if err != nil {
		t.Fatalf("atproto verification method: %v (document: %+v)", err, doc.VerificationMethod)
	}
	want, _ := a.signing.PublicKey()
	if !pub.Equal(want) {
		t.Errorf("atproto key = %s, want the signing key %s", pub.DIDKey(), want.DIDKey())
	}
	// The method's publicKeyMultibase names that key, in the format the
	// document declares (Multikey: the did:key's multibase; the older
	// Ecdsa*2019 types: base58btc of the uncompressed point).
	var vm *identity.DocVerificationMethod
	for i := range doc.VerificationMethod {
		if strings.HasSuffix(doc.VerificationMethod[i].ID, "#atproto") {
			vm = &doc.VerificationMethod[i]
		}
	}
	if vm == nil {
		t.Fatalf("no #atproto verification method in %+v", doc.VerificationMethod)
	}
	if vm.Controller != a.did.String() {
		t.Errorf("atproto key controller = %q, want %s", vm.Controller, a.did)
	}
	wantType := "EcdsaSecp256r1VerificationKey2019"
	if _, ok := want.(*atcrypto.PublicKeyK256); ok {
		wantType = "EcdsaSecp256k1VerificationKey2019"
	}
	switch vm.Type {
	case "Multikey":
		if vm.PublicKeyMultibase != want.Multibase() {
			t.Errorf("publicKeyMultibase = %s, want %s", vm.PublicKeyMultibase, want.Multibase())
		}
	case wantType:
		if mb := "z" + base58.Encode(want.UncompressedBytes()); vm.PublicKeyMultibase != mb {
			t.Errorf("publicKeyMultibase = %s, want %s", vm.PublicKeyMultibase, mb)
		}
	default:
		t.Errorf("atproto key type = %q, want Multikey or %s", vm.Type, wantType)
	}
	if got := ident.PDSEndpoint(); got != "https://pds.example.com" {
		t.Errorf("PDS endpoint = %q", got)
	}
	if svc := ident.Services["atproto_pds"]; svc.Type != "AtprotoPersonalDataServer" {
		t.Errorf("atproto_pds service type = %q", svc.Type)
	}
}

// TestGenesis: a genesis operation built here is accepted at exactly the
// DID computed here, and the directory serves the DID document, state,
// last operation and CID that it implies.
func TestGenesis(t *testing.T) {
	c, ctx := newClient(t)
	for _, tc := range []struct {
		name              string
		rotation, signing atcrypto.PrivateKey
	}{
		{"k256 rotation, k256 signing", newK256(t), newK256(t)},
		{"p256 rotation, k256 signing", newP256(t), newK256(t)},
		{"k256 rotation, p256 signing", newK256(t), newP256(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := createAccount(t, ctx, c, tc.rotation, tc.signing, "alice.test")
			checkResolves(t, ctx, c, a, "alice.test")

			data, err := c.GetData(ctx, a.did)
			if err != nil {
				t.Fatal(err)
			}
			want := &plc.Data{DID: a.did, RotationKeys: a.genesis.RotationKeys, VerificationMethods: a.genesis.VerificationMethods,
				AlsoKnownAs: a.genesis.AlsoKnownAs, Services: a.genesis.Services}
			if d := cmp.Diff(want, data); d != "" {
				t.Errorf("data (-want +got):\n%s", d)
			}

			last, err := c.GetLastOp(ctx, a.did)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(a.genesis, last); d != "" {
				t.Errorf("last op (-submitted +served):\n%s", d)
			}

			log, err := c.GetAuditLog(ctx, a.did)
			if err != nil {
				t.Fatal(err)
			}
			cid, _ := a.genesis.CID()
			if len(log) != 1 || log[0].DID != a.did || log[0].CID != cid.String() || log[0].Nullified {
				t.Fatalf("audit log = %+v, want one entry for %s with CID %s", log, a.did, cid)
			}
		})
	}
}

// TestUpdateHandle: the update names the last operation's CID as prev, is
// accepted, and the DID document then declares the new handle (the keys
// and the PDS stay).
func TestUpdateHandle(t *testing.T) {
	c, ctx := newClient(t)
	a := createAccount(t, ctx, c, newK256(t), newK256(t), "alice.test")

	op1, err := c.UpdateHandle(ctx, a.did, a.rotation, "Alice2.Test")
	if err != nil {
		t.Fatalf("UpdateHandle: %v", err)
	}
	checkResolves(t, ctx, c, a, "alice2.test")
	op2, err := c.UpdateHandle(ctx, a.did, a.rotation, "alice3.test")
	if err != nil {
		t.Fatalf("second UpdateHandle: %v", err)
	}
	checkResolves(t, ctx, c, a, "alice3.test")

	log, err := c.GetAuditLog(ctx, a.did)
	if err != nil {
		t.Fatal(err)
	}
	if len(log) != 3 {
		t.Fatalf("audit log has %d entries, want 3", len(log))
	}
	for i, op := range []*plc.Op{a.genesis, op1, op2} {
		cid, _ := op.CID()
		if log[i].CID != cid.String() {
			t.Errorf("entry %d: directory CID %s, local CID %s", i, log[i].CID, cid)
		}
		if i > 0 && op.Prev != log[i-1].CID {
			t.Errorf("entry %d: prev %s, want the CID before it, %s", i, op.Prev, log[i-1].CID)
		}
		if d := cmp.Diff(*op, log[i].Operation); d != "" {
			t.Errorf("entry %d (-submitted +served):\n%s", i, d)
		}
	}
}

// TestRefused: operations the directory must refuse are refused, the
// client surfaces its reason, and the DID is unchanged.
func TestRefused(t *testing.T) {
	c, ctx := newClient(t)
	stranger := newK256(t)
	a := createAccount(t, ctx, c, newK256(t), newK256(t), "alice.test")

	for _, tc := range []struct {
		name string
		// op returns what to submit, and the DID to submit it for.
		op   func(t *testing.T) (syntax.DID, *plc.Op)
		want string // in the directory's message
	}{
		{"genesis signed by a key that is not a rotation key", func(t *testing.T) (syntax.DID, *plc.Op) {
			_, op, err := plc.CreateGenesis(a.rotation, []string{didKey(t, a.rotation)}, didKey(t, a.signing), "bob.test", "https://pds.example.com")
			if err != nil {
				t.Fatal(err)
			}
			if err := op.Sign(stranger); err != nil {
				t.Fatal(err)
			}
			did, err := plc.GenesisDID(op)
			if err != nil {
				t.Fatal(err)
			}
			return did, op
		}, "Invalid signature"},
		{"genesis at a DID it does not hash to", func(t *testing.T) (syntax.DID, *plc.Op) {
			_, op, err := plc.CreateGenesis(a.rotation, []string{didKey(t, a.rotation)}, didKey(t, a.signing), "carol.test", "https://pds.example.com")
			if err != nil {
				t.Fatal(err)
			}
			return "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", op
		}, "Hash of genesis operation does not match"},
		{"genesis at another genesis's DID", func(t *testing.T) (syntax.DID, *plc.Op) {
			_, op, err := plc.CreateGenesis(a.rotation, []string{didKey(t, a.rotation)}, didKey(t, a.signing), "dave.test", "https://pds.example.com")
			if err != nil {
				t.Fatal(err)
			}
			return a.did, op
		}, "Operations not correctly ordered"},
		{"update signed by a key that is not a rotation key", func(t *testing.T) (syntax.DID, *plc.Op) {
			op, err := plc.UpdateOp(a.genesis, a.rotation, func(op *plc.Op) error { op.SetHandle("mallory.test"); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if err := op.Sign(stranger); err != nil {
				t.Fatal(err)
			}
			return a.did, op
		}, "Invalid signature"},
		{"update signed by the signing (not rotation) key", func(t *testing.T) (syntax.DID, *plc.Op) {
			op, err := plc.UpdateOp(a.genesis, a.rotation, func(op *plc.Op) error { op.SetHandle("mallory.test"); return nil })
			if err != nil {
				t.Fatal(err)
			}
			if err := op.Sign(a.signing); err != nil {
				t.Fatal(err)
			}
			return a.did, op
		}, "Invalid signature"},
		{"update changed after it was signed", func(t *testing.T) (syntax.DID, *plc.Op) {
			op, err := plc.UpdateOp(a.genesis, a.rotation, nil)
			if err != nil {
				t.Fatal(err)
			}
			op.SetHandle("mallory.test")
			return a.did, op
		}, "Invalid signature"},
		{"update whose prev is not in the log", func(t *testing.T) (syntax.DID, *plc.Op) {
			other := *a.genesis
			other.Sig = "AAAA"
			op, err := plc.UpdateOp(&other, a.rotation, nil)
			if err != nil {
				t.Fatal(err)
			}
			return a.did, op
		}, "Operations not correctly ordered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			did, op := tc.op(t)
			err := c.Submit(ctx, did, op)
			var perr *plc.Error
			if !errors.As(err, &perr) {
				t.Fatalf("Submit: err = %v, want a *plc.Error", err)
			}
			if perr.StatusCode != http.StatusBadRequest || !strings.Contains(perr.Message, tc.want) {
				t.Fatalf("Submit: %v; want 400 with %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "POST") {
				t.Errorf("error text %q lacks the method or the directory's message", err)
			}
		})
	}
	checkResolves(t, ctx, c, a, "alice.test")
	if log, err := c.GetAuditLog(ctx, a.did); err != nil || len(log) != 1 {
		t.Errorf("audit log after refusals: %d entries, %v; want only the genesis", len(log), err)
	}
}

// TestNotFound: an unknown DID is a 404 that matches plc.ErrNotFound, for
// every read and for an update.
func TestNotFound(t *testing.T) {
	c, ctx := newClient(t)
	did := syntax.DID("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	reads := map[string]func() error{
		"Resolve":     func() error { _, err := c.Resolve(ctx, did); return err },
		"GetData":     func() error { _, err := c.GetData(ctx, did); return err },
		"GetLastOp":   func() error { _, err := c.GetLastOp(ctx, did); return err },
		"GetAuditLog": func() error { _, err := c.GetAuditLog(ctx, did); return err },
		"UpdateHandle": func() error {
			_, err := c.UpdateHandle(ctx, did, newK256(t), "x.test")
			return err
		},
	}
	for name, f := range reads {
		t.Run(name, func(t *testing.T) {
			err := f()
			if !errors.Is(err, plc.ErrNotFound) || !strings.Contains(err.Error(), "DID not registered") {
				t.Fatalf("err = %v, want ErrNotFound with the directory's message", err)
			}
		})
	}
}

// TestUpdateByStranger: UpdateHandle with a key that is not a rotation
// key fails before anything is sent.
func TestUpdateByStranger(t *testing.T) {
	c, ctx := newClient(t)
	a := createAccount(t, ctx, c, newK256(t), newK256(t), "alice.test")
	_, err := c.UpdateHandle(ctx, a.did, newK256(t), "mallory.test")
	if err == nil || !strings.Contains(err.Error(), "not one of the rotation keys") {
		t.Fatalf("err = %v", err)
	}
	checkResolves(t, ctx, c, a, "alice.test")
}
