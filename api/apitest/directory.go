package apitest

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	pdsidentity "github.com/pdslog/pdslog/api/pds/identity"
)

// Directory is the env's DID directory: the documents of the accounts
// CreateAccount makes (their DIDs exist in no PLC directory), then, once a
// real PLC directory runs (StartPLC), real resolution for every other DID.
type Directory struct {
	pdsidentity.MockDirectory
	mu   sync.Mutex
	real pdsidentity.Directory
}

func (d *Directory) setReal(r pdsidentity.Directory) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.real = r
}

// Resolve answers from the mock, then from the real directory if any.
func (d *Directory) Resolve(ctx context.Context, did syntax.DID) (*identity.DIDDocument, error) {
	doc, err := d.MockDirectory.Resolve(ctx, did)
	if err == nil || !errors.Is(err, pdsidentity.ErrDIDNotFound) {
		return doc, err
	}
	d.mu.Lock()
	real := d.real
	d.mu.Unlock()
	if real == nil {
		return nil, err
	}
	return real.Resolve(ctx, did)
}

// Purge purges the real directory's cache.
func (d *Directory) Purge(did syntax.DID) {
	d.mu.Lock()
	real := d.real
	d.mu.Unlock()
	if real != nil {
		real.Purge(did)
	}
}

// Register puts the document of an account hosted at endpoint with key.
func (d *Directory) Register(did syntax.DID, handle syntax.Handle, key atcrypto.PublicKey, endpoint string) {
	d.Put(did, &identity.DIDDocument{
		DID:         did,
		AlsoKnownAs: []string{"at://" + strings.ToLower(handle.String())},
		VerificationMethod: []identity.DocVerificationMethod{{ID: did.String() + "#atproto", Type: "Multikey",
			Controller: did.String(), PublicKeyMultibase: key.Multibase()}},
		Service: []identity.DocService{{ID: "#atproto_pds", Type: "AtprotoPersonalDataServer", ServiceEndpoint: endpoint}},
	})
}
