package server

import (
	"context"

	"github.com/bluesky-social/indigo/atproto/identity"

	"github.com/pdslog/pdslog/projections/accounts"
)

// didDocContext is the @context of the DID documents PLC serves.
var didDocContext = []string{"https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1", "https://w3id.org/security/suites/secp256k1-2019/v1"}

// signupDIDDoc is createAccount's didDoc, as the reference returns it: for
// a new identity, the document this server just registered (its handle,
// repo key and endpoint); for an identity moving in, the document its DID
// resolves to (nil when that fails, and the field is left out).
func (h *Handlers) signupDIDDoc(ctx context.Context, a *accounts.Account, migrated bool) any {
	var doc *identity.DIDDocument
	if migrated {
		d, err := h.PDS.Directory.Resolve(ctx, a.DID)
		if err != nil {
			return nil
		}
		doc = d
	} else {
		key, err := h.PDS.SigningKey(ctx, a.DID)
		if err != nil {
			return nil
		}
		pub, err := key.PublicKey()
		if err != nil {
			return nil
		}
		doc = &identity.DIDDocument{DID: a.DID, AlsoKnownAs: []string{"at://" + a.Handle.String()},
			VerificationMethod: []identity.DocVerificationMethod{{ID: a.DID.String() + "#atproto", Type: "Multikey",
				Controller: a.DID.String(), PublicKeyMultibase: pub.Multibase()}},
			Service: []identity.DocService{{ID: "#atproto_pds", Type: "AtprotoPersonalDataServer", ServiceEndpoint: h.PDS.Service.PublicURL()}}}
	}
	return struct {
		Context []string `json:"@context"`
		*identity.DIDDocument
	}{didDocContext, doc}
}
