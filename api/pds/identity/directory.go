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

// Resolve returns did's document, or ErrDIDNotFound.
func (m *MockDirectory) Resolve(_ context.Context, did syntax.DID) (*identity.DIDDocument, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if doc, ok := m.docs[did]; ok {
		return doc, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrDIDNotFound, did)
}
