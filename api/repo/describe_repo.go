package repo

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/xrpc"
)

type verificationMethod struct {
	ID                 string `json:"id"`
	Type               string `json:"type"`
	Controller         string `json:"controller"`
	PublicKeyMultibase string `json:"publicKeyMultibase"`
}

type serviceEntry struct {
	ID              string `json:"id"`
	Type            string `json:"type"`
	ServiceEndpoint string `json:"serviceEndpoint"`
}

type didDoc struct {
	Context            []string             `json:"@context"`
	ID                 string               `json:"id"`
	AlsoKnownAs        []string             `json:"alsoKnownAs"`
	VerificationMethod []verificationMethod `json:"verificationMethod"`
	Service            []serviceEntry       `json:"service"`
}

type describeRepoOutput struct {
	Handle          string   `json:"handle"`
	DID             string   `json:"did"`
	DIDDoc          didDoc   `json:"didDoc"`
	Collections     []string `json:"collections"`
	HandleIsCorrect bool     `json:"handleIsCorrect"`
}

// DescribeRepo serves com.atproto.repo.describeRepo for hosted repos. The
// DID document is the one this PDS published for the account (its handle,
// repo key and endpoint), built from local state rather than fetched. A
// repo that is not active is described only to its owner and the admin;
// others get RepoTakendown, RepoDeactivated … as the reference answers.
func (h *Handlers) DescribeRepo(c echo.Context) error {
	ctx := c.Request().Context()
	raw, err := xrpc.Query(c, "repo")
	if err != nil {
		return err
	}
	a, hosted, err := h.lookupRepo(ctx, raw)
	if err != nil {
		return err
	}
	if !hosted {
		return repoNotFound(raw)
	}
	// assertRepoAvailability: the status's error to anyone but the owner
	// and the admin.
	if ok, err := h.mayRead(c, a); err != nil {
		return err
	} else if !ok {
		return xrpc.RepoUnavailable(raw, a.Status)
	}
	key, err := h.PDS.Keys.Get(ctx, a.DID, a.SigningKeySeq)
	if err != nil {
		return err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return err
	}
	colls, err := h.PDS.Records.Collections(ctx, a.DID)
	if err != nil {
		return err
	}
	out := describeRepoOutput{Handle: a.Handle.String(), DID: a.DID.String(), HandleIsCorrect: true, Collections: make([]string, 0, len(colls)),
		DIDDoc: didDoc{
			Context:            []string{"https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1", "https://w3id.org/security/suites/secp256k1-2019/v1"},
			ID:                 a.DID.String(),
			AlsoKnownAs:        []string{"at://" + a.Handle.String()},
			VerificationMethod: []verificationMethod{{ID: a.DID.String() + "#atproto", Type: "Multikey", Controller: a.DID.String(), PublicKeyMultibase: pub.Multibase()}},
			Service:            []serviceEntry{{ID: "#atproto_pds", Type: "AtprotoPersonalDataServer", ServiceEndpoint: h.PDS.Service.PublicURL()}},
		}}
	for _, c := range colls {
		out.Collections = append(out.Collections, c.String())
	}
	return c.JSON(http.StatusOK, out)
}
