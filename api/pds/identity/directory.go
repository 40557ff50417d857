package identity

import (
	"context"
	"fmt"
	"sync"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Directory resolves a DID to its document. Errors wrap ErrDIDNotFound
// when the DID positively has no document, ErrUnsupportedDID for DID
// methods other than plc and web.
type Directory interface {
	Resolve(ctx context.Context, did syntax.DID) (*identity.DIDDocument, error)
	// Purge forgets any cached document of did: the next Resolve asks.
	Purge(did syntax.DID)
}

var (
	_ Directory = (*Resolver)(nil)
	_ Directory = (*MockDirectory)(nil)
)

// MockDirectory is an in-memory Directory for tests.
type MockDirectory struct {
	mu   sync.Mutex
	docs map[syntax.DID]*identity.DIDDocument
}

// Put sets did's document (nil removes it).
func (m *MockDirectory) Put(did syntax.DID, doc *identity.DIDDocument) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.docs == nil {
		m.docs = map[syntax.DID]*identity.DIDDocument{}
	}
	if doc == nil {
		delete(m.docs, did)
		return
	}
	m.docs[did] = doc
}

// Purge does nothing: the mock has no cache.
func (m *MockDirectory) Purge(syntax.DID) {}

// Resolve returns did's document, or ErrDIDNotFound.
func (m *MockDirectory) Resolve(_ context.Context, did syntax.DID) (*identity.DIDDocument, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if doc, ok := m.docs[did]; ok {
		return doc, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrDIDNotFound, did)
}

// Indigo adapts d to indigo's identity.Directory (for its service-auth
// validator): DIDs only; handles are not looked up.
func Indigo(d Directory) identity.Directory { return indigoDir{d} }

type indigoDir struct{ d Directory }

func (x indigoDir) LookupDID(ctx context.Context, did syntax.DID) (*identity.Identity, error) {
	doc, err := x.d.Resolve(ctx, did)
	if err != nil {
		return nil, err
	}
	ident := identity.ParseIdentity(doc)
	return &ident, nil
}

func (x indigoDir) LookupHandle(context.Context, syntax.Handle) (*identity.Identity, error) {
	return nil, fmt.Errorf("%w: handles are not resolved here", ErrUnsupportedDID)
}

func (x indigoDir) Lookup(ctx context.Context, atid syntax.AtIdentifier) (*identity.Identity, error) {
	did, err := atid.AsDID()
	if err != nil {
		return nil, fmt.Errorf("%w: handles are not resolved here", ErrUnsupportedDID)
	}
	return x.LookupDID(ctx, did)
}

func (x indigoDir) Purge(_ context.Context, atid syntax.AtIdentifier) error {
	if did, err := atid.AsDID(); err == nil {
		x.d.Purge(did)
	}
	return nil
}
