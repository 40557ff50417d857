package plc_test

import (
	"encoding/hex"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/google/go-cmp/cmp"

	"github.com/pdslog/pdslog/api/pds/identity/plc"
)

func newK256(t testing.TB) *atcrypto.PrivateKeyK256 {
	t.Helper()
	k, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newP256(t testing.TB) *atcrypto.PrivateKeyP256 {
	t.Helper()
	k, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func didKey(t testing.TB, k atcrypto.PrivateKey) string {
	t.Helper()
	pub, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return pub.DIDKey()
}

// vectorOp is a genesis operation whose encodings were computed with the
// reference JavaScript implementation in api/apitest/plcserver/node_modules
// (@did-plc/lib 0.0.4 didForCreateOp, @ipld/dag-cbor encode, CIDv1
// dag-cbor sha2-256 from multiformats). Its sig is not a real signature:
// the hashes do not care.
var vectorOp = plc.Op{
	Type: plc.TypeOperation,
	RotationKeys: []string{
		"did:key:zQ3shhCGUqDKjStzuDxPkTxN6ujddP4RkEKJJouJGRRkaLGbg",
		"did:key:zDnaeh9v2RmcMo13Du2EBdNhgyN5S5TP1ufEdFgDQUJgLGHAF",
	},
	VerificationMethods: map[string]string{"atproto": "did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"},
	AlsoKnownAs:         []string{"at://alice.test"},
	Services:            map[string]plc.Service{"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "https://pds.example.com"}},
	Sig:                 "AAAA",
}

const (
	vectorDID          = "did:plc:o4rgpipq4ebyuzhknl4itrlt"
	vectorCID          = "bafyreidxejt2d4hbaofgj2tk7ce4k45qarq7xj2pbqddktninoq3eclzli"
	vectorUnsignedCBOR = "a66470726576f664747970656d706c635f6f7065726174696f6e687365727669636573a16b617470726f746f5f706473a264747970657819417470726f746f506572736f6e616c4461746153657276657268656e64706f696e747768747470733a2f2f7064732e6578616d706c652e636f6d6b616c736f4b6e6f776e4173816f61743a2f2f616c6963652e746573746c726f746174696f6e4b6579738278396469643a6b65793a7a513373686843475571444b6a53747a754478506b54784e36756a64645034526b454b4a4a6f754a4752526b614c47626778396469643a6b65793a7a446e616568397632526d634d6f31334475324542644e6867794e3553355450317566456446674451554a674c4748414673766572696669636174696f6e4d6574686f6473a167617470726f746f78396469643a6b65793a7a51337368586a486569427552434b6d4d33366375596e6d3759454d7a68476e436d437957393273524a39707269625346"
)

// TestReferenceVector: DAG-CBOR (key order, null prev), the genesis DID
// and the CID agree byte for byte with the reference implementation's.
func TestReferenceVector(t *testing.T) {
	op := vectorOp
	b, err := op.UnsignedCBOR()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != vectorUnsignedCBOR {
		t.Errorf("UnsignedCBOR =\n%s\nwant\n%s", got, vectorUnsignedCBOR)
	}
	did, err := plc.GenesisDID(&op)
	if err != nil {
		t.Fatal(err)
	}
	if did != vectorDID {
		t.Errorf("GenesisDID = %s, want %s", did, vectorDID)
	}
	c, err := op.CID()
	if err != nil {
		t.Fatal(err)
	}
	if c.String() != vectorCID {
		t.Errorf("CID = %s, want %s", c, vectorCID)
	}
}

func TestCreateGenesis(t *testing.T) {
	rot, rot2, sign := newK256(t), newP256(t), newK256(t)
	did, op, err := plc.CreateGenesis(rot, []string{didKey(t, rot), didKey(t, rot2)}, didKey(t, sign), "Alice.Test", "https://pds.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^did:plc:[a-z2-7]{24}$`).MatchString(did.String()) {
		t.Errorf("DID %q is not did:plc:<24 base32 chars>", did)
	}
	want := plc.Op{
		Type:                plc.TypeOperation,
		RotationKeys:        []string{didKey(t, rot), didKey(t, rot2)},
		VerificationMethods: map[string]string{"atproto": didKey(t, sign)},
		AlsoKnownAs:         []string{"at://alice.test"},
		Services:            map[string]plc.Service{"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "https://pds.example.com"}},
		Sig:                 op.Sig,
	}
	if d := cmp.Diff(want, *op); d != "" {
		t.Errorf("op (-want +got):\n%s", d)
	}
	if strings.ContainsAny(op.Sig, "=+/") {
		t.Errorf("sig %q is not base64url without padding", op.Sig)
	}
	if signer, err := op.VerifySignature(op.RotationKeys); err != nil || signer != didKey(t, rot) {
		t.Errorf("VerifySignature = %q, %v; want the first rotation key", signer, err)
	}
	if _, err := op.VerifySignature([]string{didKey(t, rot2), didKey(t, sign)}); err == nil {
		t.Error("VerifySignature accepted keys that did not sign")
	}
	if again, _ := plc.GenesisDID(op); again != did {
		t.Errorf("GenesisDID = %s, CreateGenesis said %s", again, did)
	}
	// The DID covers the signature too.
	other := *op
	other.Sig = "AAAA"
	if d2, _ := plc.GenesisDID(&other); d2 == did {
		t.Error("GenesisDID ignores the signature")
	}
}

func TestCreateGenesisRefuses(t *testing.T) {
	rot, sign := newK256(t), newK256(t)
	keys := func(n int) []string {
		var out []string
		for range n {
			out = append(out, didKey(t, newK256(t)))
		}
		return out
	}
	for _, tc := range []struct {
		name     string
		rotation []string
		signing  string
		endpoint string
		want     string
	}{
		{"no rotation keys", nil, didKey(t, sign), "https://pds.test", "0 rotation keys"},
		{"six rotation keys", append(keys(5), didKey(t, rot)), didKey(t, sign), "https://pds.test", "6 rotation keys"},
		{"duplicate rotation key", []string{didKey(t, rot), didKey(t, rot)}, didKey(t, sign), "https://pds.test", "duplicate rotation key"},
		{"rotation key not a did:key", []string{didKey(t, rot), "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"}, didKey(t, sign), "https://pds.test", "rotation key"},
		{"signing key not a did:key", []string{didKey(t, rot)}, "did:web:example.com", "https://pds.test", `verification method "atproto"`},
		{"endpoint without scheme", []string{didKey(t, rot)}, didKey(t, sign), "pds.test", "not an http(s) URL"},
		{"signer not a rotation key", keys(2), didKey(t, sign), "https://pds.test", "not one of the rotation keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := plc.CreateGenesis(rot, tc.rotation, tc.signing, "alice.test", tc.endpoint)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestSetHandle(t *testing.T) {
	for _, tc := range []struct {
		name     string
		aka, out []string
	}{
		{"none", nil, []string{"at://new.test"}},
		{"replaces the handle", []string{"at://old.test"}, []string{"at://new.test"}},
		{"keeps other entries in place", []string{"https://me.example", "at://old.test", "at://older.test"}, []string{"https://me.example", "at://new.test", "at://older.test"}},
		{"puts it first", []string{"https://me.example"}, []string{"at://new.test", "https://me.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op := &plc.Op{AlsoKnownAs: tc.aka}
			before := append([]string(nil), tc.aka...)
			op.SetHandle(syntax.Handle("New.Test"))
			if d := cmp.Diff(tc.out, op.AlsoKnownAs); d != "" {
				t.Errorf("AlsoKnownAs (-want +got):\n%s", d)
			}
			if d := cmp.Diff(before, tc.aka); d != "" {
				t.Errorf("SetHandle changed the slice it was given:\n%s", d)
			}
		})
	}
}

func TestUpdateOp(t *testing.T) {
	rot, other, sign := newK256(t), newK256(t), newK256(t)
	_, genesis, err := plc.CreateGenesis(rot, []string{didKey(t, rot)}, didKey(t, sign), "alice.test", "https://pds.test")
	if err != nil {
		t.Fatal(err)
	}
	next, err := plc.UpdateOp(genesis, rot, func(op *plc.Op) error { op.SetHandle("bob.test"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	prev, _ := genesis.CID()
	if next.Prev != prev.String() {
		t.Errorf("prev = %q, want the genesis CID %s", next.Prev, prev)
	}
	if d := cmp.Diff([]string{"at://bob.test"}, next.AlsoKnownAs); d != "" {
		t.Errorf("alsoKnownAs:\n%s", d)
	}
	if d := cmp.Diff([]string{"at://alice.test"}, genesis.AlsoKnownAs); d != "" {
		t.Errorf("UpdateOp changed the previous op:\n%s", d)
	}
	if _, err := next.VerifySignature(genesis.RotationKeys); err != nil {
		t.Error(err)
	}
	if _, err := plc.UpdateOp(genesis, other, nil); err == nil || !strings.Contains(err.Error(), "not one of the rotation keys of the previous operation") {
		t.Errorf("UpdateOp signed by a stranger: err = %v", err)
	}
	tomb := &plc.Op{Type: plc.TypeTombstone, Prev: prev.String(), Sig: "AAAA"}
	if _, err := plc.UpdateOp(tomb, rot, nil); err == nil || !strings.Contains(err.Error(), "tombstoned") {
		t.Errorf("UpdateOp after a tombstone: err = %v", err)
	}
	if _, err := plc.GenesisDID(next); err == nil {
		t.Error("GenesisDID of an update succeeded")
	}
}

// TestUpdateOpFromLegacyCreate: a first-generation "create" genesis is
// normalized as the reference implementation does before it is updated.
func TestUpdateOpFromLegacyCreate(t *testing.T) {
	rot, recovery := newK256(t), newK256(t)
	legacy := &plc.Op{Type: plc.TypeLegacyCreate, SigningKey: didKey(t, rot), RecoveryKey: didKey(t, recovery),
		Handle: "alice.bsky.social", Service: "bsky.social", Sig: "AAAA"}
	next, err := plc.UpdateOp(legacy, rot, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := &plc.Op{
		Type:                plc.TypeOperation,
		RotationKeys:        []string{didKey(t, recovery), didKey(t, rot)},
		VerificationMethods: map[string]string{"atproto": didKey(t, rot)},
		AlsoKnownAs:         []string{"at://alice.bsky.social"},
		Services:            map[string]plc.Service{"atproto_pds": {Type: "AtprotoPersonalDataServer", Endpoint: "https://bsky.social"}},
		Prev:                next.Prev,
		Sig:                 next.Sig,
	}
	if d := cmp.Diff(want, next); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestOpJSON(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       string // error substring; "" = decodes and round-trips
	}{
		{"genesis", `{"type":"plc_operation","rotationKeys":["did:key:a"],"verificationMethods":{"atproto":"did:key:b"},"alsoKnownAs":[],"services":{},"prev":null,"sig":"x"}`, ""},
		{"update", `{"type":"plc_operation","rotationKeys":["did:key:a"],"verificationMethods":{},"alsoKnownAs":["at://a.test"],"services":{"atproto_pds":{"type":"AtprotoPersonalDataServer","endpoint":"https://pds.test"}},"prev":"bafyreidxejt2d4hbaofgj2tk7ce4k45qarq7xj2pbqddktninoq3eclzli","sig":"x"}`, ""},
		{"tombstone", `{"type":"plc_tombstone","prev":"bafyreidxejt2d4hbaofgj2tk7ce4k45qarq7xj2pbqddktninoq3eclzli","sig":"x"}`, ""},
		{"legacy create", `{"type":"create","signingKey":"did:key:a","recoveryKey":"did:key:b","handle":"a.test","service":"https://pds.test","prev":null,"sig":"x"}`, ""},
		{"unsigned", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null}`, ""},
		{"unknown type", `{"type":"plc_nope","prev":null}`, "unknown operation type"},
		{"missing prev", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"sig":"x"}`, `without "prev"`},
		{"field of another type", `{"type":"plc_tombstone","prev":"bafy","handle":"a.test","sig":"x"}`, `unexpected field "handle"`},
		{"unknown field", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{},"prev":null,"extra":1}`, `unexpected field "extra"`},
		{"unknown service field", `{"type":"plc_operation","rotationKeys":[],"verificationMethods":{},"alsoKnownAs":[],"services":{"s":{"type":"t","endpoint":"e","x":1}},"prev":null}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var op plc.Op
			err := json.Unmarshal([]byte(tc.json), &op)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			out, err := json.Marshal(op)
			if err != nil {
				t.Fatal(err)
			}
			var a, b any
			json.Unmarshal([]byte(tc.json), &a)
			json.Unmarshal(out, &b)
			if d := cmp.Diff(a, b); d != "" {
				t.Errorf("round trip (-in +out):\n%s", d)
			}
		})
	}
}
