package plc

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Operation types.
const (
	// TypeOperation is a regular operation: a genesis or an update.
	TypeOperation = "plc_operation"
	// TypeTombstone deactivates the DID.
	TypeTombstone = "plc_tombstone"
	// TypeLegacyCreate is the deprecated first-generation genesis format,
	// still found at the start of old DIDs' logs. It is read, never made.
	TypeLegacyCreate = "create"
)

// Well-known names inside an operation.
const (
	// VerificationMethodAtproto names the atproto repo signing key.
	VerificationMethodAtproto = "atproto"
	// ServiceAtprotoPDS names the account's PDS service.
	ServiceAtprotoPDS = "atproto_pds"
	// ServiceTypeAtprotoPDS is the type of the atproto_pds service.
	ServiceTypeAtprotoPDS = "AtprotoPersonalDataServer"
)

// MaxRotationKeys is the most rotation keys an operation may list.
const MaxRotationKeys = 5

// Service is one entry of an operation's services.
type Service struct {
	Type     string `json:"type"`
	Endpoint string `json:"endpoint"`
}

// Op is one did:plc operation, signed or not. Which fields are used
// depends on Type:
//
//   - [TypeOperation]: RotationKeys, VerificationMethods, AlsoKnownAs,
//     Services, Prev, Sig.
//   - [TypeTombstone]: Prev, Sig.
//   - [TypeLegacyCreate]: SigningKey, RecoveryKey, Handle, Service, Prev,
//     Sig.
//
// Prev is the CID (string form) of the operation this one follows; empty
// means null, as in a genesis operation. Sig is empty on an unsigned
// operation.
//
// Its JSON form is the directory's: the fields of its Type and no others,
// with prev null rather than absent. Decoding rejects unknown or missing
// fields, so a decoded Op re-encodes to the same DAG-CBOR, and [Op.CID] of
// an operation read from a directory is the CID the directory knows it by.
type Op struct {
	Type string

	RotationKeys        []string
	VerificationMethods map[string]string
	AlsoKnownAs         []string
	Services            map[string]Service

	SigningKey  string
	RecoveryKey string
	Handle      string
	Service     string

	Prev string
	Sig  string
}

// fieldsOf lists each type's fields, sig excluded.
var fieldsOf = map[string][]string{
	TypeOperation:    {"type", "rotationKeys", "verificationMethods", "alsoKnownAs", "services", "prev"},
	TypeTombstone:    {"type", "prev"},
	TypeLegacyCreate: {"type", "signingKey", "recoveryKey", "handle", "service", "prev"},
}

// data is op as generic data in the atproto data model, for DAG-CBOR and
// JSON alike.
func (op *Op) data(withSig bool) (map[string]any, error) {
	var prev any
	if op.Prev != "" {
		prev = op.Prev
	}
	m := map[string]any{"type": op.Type, "prev": prev}
	switch op.Type {
	case TypeOperation:
		m["rotationKeys"] = stringList(op.RotationKeys)
		vm := make(map[string]any, len(op.VerificationMethods))
		for k, v := range op.VerificationMethods {
			vm[k] = v
		}
		m["verificationMethods"] = vm
		m["alsoKnownAs"] = stringList(op.AlsoKnownAs)
		svc := make(map[string]any, len(op.Services))
		for k, s := range op.Services {
			svc[k] = map[string]any{"type": s.Type, "endpoint": s.Endpoint}
		}
		m["services"] = svc
	case TypeTombstone:
		if op.Prev == "" {
			return nil, errors.New("plc: tombstone without prev")
		}
	case TypeLegacyCreate:
		m["signingKey"] = op.SigningKey
		m["recoveryKey"] = op.RecoveryKey
		m["handle"] = op.Handle
		m["service"] = op.Service
	default:
		return nil, fmt.Errorf("plc: unknown operation type %q", op.Type)
	}
	if withSig {
		if op.Sig == "" {
			return nil, errors.New("plc: operation is not signed")
		}
		m["sig"] = op.Sig
	}
	return m, nil
}

func stringList(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// MarshalJSON encodes op as a directory expects it (sig omitted when
// empty).
func (op Op) MarshalJSON() ([]byte, error) {
	m, err := op.data(op.Sig != "")
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}

// UnmarshalJSON decodes an operation of any of the three types, rejecting
// unknown and missing fields.
func (op *Op) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("plc: operation: %w", err)
	}
	var typ string
	if err := json.Unmarshal(raw["type"], &typ); err != nil {
		return fmt.Errorf("plc: operation type: %w", err)
	}
	want, ok := fieldsOf[typ]
	if !ok {
		return fmt.Errorf("plc: unknown operation type %q", typ)
	}
	for _, f := range want {
		if _, ok := raw[f]; !ok {
			return fmt.Errorf("plc: %s operation without %q", typ, f)
		}
	}
	for f := range raw {
		if f != "sig" && !slices.Contains(want, f) {
			return fmt.Errorf("plc: %s operation with unexpected field %q", typ, f)
		}
	}
	var aux struct {
		Type                string             `json:"type"`
		RotationKeys        []string           `json:"rotationKeys"`
		VerificationMethods map[string]string  `json:"verificationMethods"`
		AlsoKnownAs         []string           `json:"alsoKnownAs"`
		Services            map[string]Service `json:"services"`
		SigningKey          string             `json:"signingKey"`
		RecoveryKey         string             `json:"recoveryKey"`
		Handle              string             `json:"handle"`
		Service             string             `json:"service"`
		Prev                *string            `json:"prev"`
		Sig                 string             `json:"sig"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&aux); err != nil {
		return fmt.Errorf("plc: %s operation: %w", typ, err)
	}
	if aux.Prev != nil && *aux.Prev == "" {
		return errors.New("plc: operation with empty prev")
	}
	*op = Op{
		Type:                aux.Type,
		RotationKeys:        aux.RotationKeys,
		VerificationMethods: aux.VerificationMethods,
		AlsoKnownAs:         aux.AlsoKnownAs,
		Services:            aux.Services,
		SigningKey:          aux.SigningKey,
		RecoveryKey:         aux.RecoveryKey,
		Handle:              aux.Handle,
		Service:             aux.Service,
		Sig:                 aux.Sig,
	}
	if aux.Prev != nil {
		op.Prev = *aux.Prev
	}
	if typ == TypeOperation {
		// Present in the JSON (checked above), so never null in Go.
		op.RotationKeys = nonNil(op.RotationKeys)
		op.AlsoKnownAs = nonNil(op.AlsoKnownAs)
		if op.VerificationMethods == nil {
			op.VerificationMethods = map[string]string{}
		}
		if op.Services == nil {
			op.Services = map[string]Service{}
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// UnsignedCBOR is the DAG-CBOR encoding of op without its sig: the bytes a
// rotation key signs.
func (op *Op) UnsignedCBOR() ([]byte, error) {
	m, err := op.data(false)
	if err != nil {
		return nil, err
	}
	return atdata.MarshalCBOR(m)
}

// CBOR is the DAG-CBOR encoding of the signed op.
func (op *Op) CBOR() ([]byte, error) {
	m, err := op.data(true)
	if err != nil {
		return nil, err
	}
	return atdata.MarshalCBOR(m)
}

// CID is the signed op's content identifier (CIDv1, dag-cbor, sha2-256):
// what the next operation's prev names.
func (op *Op) CID() (cid.Cid, error) {
	b, err := op.CBOR()
	if err != nil {
		return cid.Undef, err
	}
	return cid.NewPrefixV1(cid.DagCBOR, multihash.SHA2_256).Sum(b)
}

// Sign sets op.Sig to key's signature over [Op.UnsignedCBOR].
func (op *Op) Sign(key atcrypto.PrivateKey) error {
	b, err := op.UnsignedCBOR()
	if err != nil {
		return err
	}
	sig, err := key.HashAndSign(b)
	if err != nil {
		return fmt.Errorf("plc: sign: %w", err)
	}
	op.Sig = base64.RawURLEncoding.EncodeToString(sig)
	return nil
}

// VerifySignature reports which of the did:key rotation keys signed op
// (the first that verifies), or an error if none did.
func (op *Op) VerifySignature(rotationKeys []string) (string, error) {
	sig, err := base64.RawURLEncoding.DecodeString(op.Sig)
	if err != nil {
		return "", fmt.Errorf("plc: signature is not base64url without padding: %w", err)
	}
	b, err := op.UnsignedCBOR()
	if err != nil {
		return "", err
	}
	for _, k := range rotationKeys {
		pub, err := atcrypto.ParsePublicDIDKey(k)
		if err != nil {
			return "", fmt.Errorf("plc: rotation key %q: %w", k, err)
		}
		if pub.HashAndVerify(b, sig) == nil {
			return k, nil
		}
	}
	return "", errors.New("plc: signature matches none of the rotation keys")
}

// GenesisDID is the DID that the signed genesis operation op creates:
// "did:plc:" + the first 24 characters of base32-lower (no padding) of the
// SHA-256 of op's DAG-CBOR.
func GenesisDID(op *Op) (syntax.DID, error) {
	if op.Prev != "" {
		return "", errors.New("plc: not a genesis operation (prev is set)")
	}
	if op.Type == TypeTombstone {
		return "", errors.New("plc: a tombstone is not a genesis operation")
	}
	b, err := op.CBOR()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	enc := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:]))
	return syntax.DID("did:plc:" + enc[:24]), nil
}

// Validate checks a regular operation's shape before it is signed or
// sent: 1 to [MaxRotationKeys] distinct rotation keys and verification
// methods that all parse as did:key, http(s) service endpoints, and a prev
// that parses as a CID.
func (op *Op) Validate() error {
	if op.Type != TypeOperation {
		return fmt.Errorf("plc: operation type is %q, not %q", op.Type, TypeOperation)
	}
	if n := len(op.RotationKeys); n < 1 || n > MaxRotationKeys {
		return fmt.Errorf("plc: %d rotation keys (want 1 to %d)", n, MaxRotationKeys)
	}
	seen := map[string]bool{}
	for _, k := range op.RotationKeys {
		if seen[k] {
			return fmt.Errorf("plc: duplicate rotation key %q", k)
		}
		seen[k] = true
		if _, err := atcrypto.ParsePublicDIDKey(k); err != nil {
			return fmt.Errorf("plc: rotation key %q: %w", k, err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(op.VerificationMethods)) {
		if _, err := atcrypto.ParsePublicDIDKey(op.VerificationMethods[id]); err != nil {
			return fmt.Errorf("plc: verification method %q: %w", id, err)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(op.Services)) {
		s := op.Services[id]
		if s.Type == "" {
			return fmt.Errorf("plc: service %q without type", id)
		}
		if err := checkEndpoint(s.Endpoint); err != nil {
			return fmt.Errorf("plc: service %q: %w", id, err)
		}
	}
	if op.Prev != "" {
		if _, err := cid.Parse(op.Prev); err != nil {
			return fmt.Errorf("plc: prev %q: %w", op.Prev, err)
		}
	}
	return nil
}

func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("endpoint %q is not an http(s) URL", endpoint)
	}
	return nil
}

// HandleURI is the alsoKnownAs entry that declares handle: "at://handle".
func HandleURI(handle syntax.Handle) string {
	return "at://" + handle.Normalize().String()
}

// SetHandle makes handle the op's declared handle: it replaces the first
// at:// entry of AlsoKnownAs, or puts one first if there is none; other
// entries are kept.
func (op *Op) SetHandle(handle syntax.Handle) {
	aka := slices.Clone(op.AlsoKnownAs)
	i := slices.IndexFunc(aka, func(s string) bool { return strings.HasPrefix(s, "at://") })
	if i < 0 {
		aka = append([]string{HandleURI(handle)}, aka...)
	} else {
		aka[i] = HandleURI(handle)
	}
	op.AlsoKnownAs = aka
}

// CreateGenesis builds and signs a new account's genesis operation and
// returns it with the DID it creates. rotationKeys are did:keys in
// priority order (the PDS's own first, unless the account brings a
// recovery key to put above it); signer must be the private half of one of
// them. signingKey is the did:key of the account's repo signing key;
// pdsEndpoint the PDS's URL (e.g. "https://pds.example.com").
func CreateGenesis(signer atcrypto.PrivateKey, rotationKeys []string, signingKey string, handle syntax.Handle, pdsEndpoint string) (syntax.DID, *Op, error) {
	op := &Op{
		Type:                TypeOperation,
		RotationKeys:        slices.Clone(rotationKeys),
		VerificationMethods: map[string]string{VerificationMethodAtproto: signingKey},
		AlsoKnownAs:         []string{HandleURI(handle)},
		Services: map[string]Service{
			ServiceAtprotoPDS: {Type: ServiceTypeAtprotoPDS, Endpoint: pdsEndpoint},
		},
	}
	if err := op.Validate(); err != nil {
		return "", nil, err
	}
	if err := checkSigner(signer, op.RotationKeys); err != nil {
		return "", nil, err
	}
	if err := op.Sign(signer); err != nil {
		return "", nil, err
	}
	did, err := GenesisDID(op)
	if err != nil {
		return "", nil, err
	}
	return did, op, nil
}

// UpdateOp builds and signs the operation that follows last: a copy of
// last's state (a legacy create operation is first normalized to a regular
// one), changed by change, with prev set to last's CID. signer must be the
// private half of one of last's rotation keys.
func UpdateOp(last *Op, signer atcrypto.PrivateKey, change func(*Op) error) (*Op, error) {
	prev, err := last.CID()
	if err != nil {
		return nil, fmt.Errorf("plc: previous operation: %w", err)
	}
	state, err := last.normalized()
	if err != nil {
		return nil, err
	}
	if err := checkSigner(signer, state.RotationKeys); err != nil {
		return nil, fmt.Errorf("%w of the previous operation", err)
	}
	next := &Op{
		Type:                TypeOperation,
		RotationKeys:        slices.Clone(state.RotationKeys),
		VerificationMethods: maps.Clone(state.VerificationMethods),
		AlsoKnownAs:         slices.Clone(state.AlsoKnownAs),
		Services:            maps.Clone(state.Services),
	}
	if change != nil {
		if err := change(next); err != nil {
			return nil, err
		}
	}
	next.Type = TypeOperation
	next.Prev = prev.String()
	next.Sig = ""
	if err := next.Validate(); err != nil {
		return nil, err
	}
	if err := next.Sign(signer); err != nil {
		return nil, err
	}
	return next, nil
}

// normalized is op's DID state as a regular operation.
func (op *Op) normalized() (*Op, error) {
	switch op.Type {
	case TypeOperation:
		return op, nil
	case TypeLegacyCreate:
		return &Op{
			Type:                TypeOperation,
			RotationKeys:        []string{op.RecoveryKey, op.SigningKey},
			VerificationMethods: map[string]string{VerificationMethodAtproto: op.SigningKey},
			AlsoKnownAs:         []string{legacyHandleURI(op.Handle)},
			Services: map[string]Service{
				ServiceAtprotoPDS: {Type: ServiceTypeAtprotoPDS, Endpoint: legacyEndpoint(op.Service)},
			},
		}, nil
	case TypeTombstone:
		return nil, errors.New("plc: the DID is tombstoned")
	default:
		return nil, fmt.Errorf("plc: unknown operation type %q", op.Type)
	}
}

// legacyHandleURI and legacyEndpoint normalize a legacy create operation's
// handle and service the way the reference implementation does.
func legacyHandleURI(h string) string {
	if strings.HasPrefix(h, "at://") {
		return h
	}
	h = strings.Replace(h, "http://", "", 1)
	h = strings.Replace(h, "https://", "", 1)
	return "at://" + h
}

func legacyEndpoint(s string) string {
	if strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") {
		return s
	}
	return "https://" + s
}

func checkSigner(signer atcrypto.PrivateKey, rotationKeys []string) error {
	if signer == nil {
		return errors.New("plc: no signing rotation key")
	}
	pub, err := signer.PublicKey()
	if err != nil {
		return fmt.Errorf("plc: signer: %w", err)
	}
	if !slices.Contains(rotationKeys, pub.DIDKey()) {
		return fmt.Errorf("plc: signer %s is not one of the rotation keys", pub.DIDKey())
	}
	return nil
}
