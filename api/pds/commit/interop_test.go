package commit_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/mr-tron/base58"

	"github.com/pdslog/pdslog/api/pds/commit"
)

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// The record path (JSON -> atdata -> DAG-CBOR -> CID) reproduces the data
// model fixtures byte for byte.
func TestInteropDataModelFixtures(t *testing.T) {
	var cases []struct {
		JSON       json.RawMessage `json:"json"`
		CBORBase64 string          `json:"cbor_base64"`
		CID        string          `json:"cid"`
	}
	readJSON(t, "data-model-fixtures.json", &cases)
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for i, c := range cases {
		obj, err := atdata.UnmarshalJSON(c.JSON)
		if err != nil {
			t.Fatalf("case %d: parse: %v", i, err)
		}
		b, err := atdata.MarshalCBOR(obj)
		if err != nil {
			t.Fatalf("case %d: encode: %v", i, err)
		}
		want, err := base64.RawStdEncoding.DecodeString(c.CBORBase64)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, want) {
			t.Fatalf("case %d: CBOR differs:\n got %x\nwant %x", i, b, want)
		}
		// With a $type naming the collection, EncodeRecord gives the same
		// CID as the fixture's own encoding when the fixture has that $type;
		// without one, the CID of the bytes must still be the fixture's.
		if _, hasType := obj["$type"]; !hasType {
			got, err := commit.CIDForBytes(b)
			if err != nil || got.String() != c.CID {
				t.Fatalf("case %d: cid %s, want %s (%v)", i, got, c.CID, err)
			}
		}
		back, err := atdata.UnmarshalCBOR(b)
		if err != nil {
			t.Fatalf("case %d: decode: %v", i, err)
		}
		again, _ := atdata.MarshalCBOR(back)
		if !bytes.Equal(again, want) {
			t.Fatalf("case %d: CBOR round trip differs", i)
		}
	}
}

func TestInteropDataModelValidity(t *testing.T) {
	var valid, invalid []struct {
		Note string          `json:"note"`
		JSON json.RawMessage `json:"json"`
	}
	readJSON(t, "data-model-valid.json", &valid)
	readJSON(t, "data-model-invalid.json", &invalid)
	if len(valid) == 0 || len(invalid) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range valid {
		if _, err := atdata.UnmarshalJSON(c.JSON); err != nil {
			t.Errorf("valid %q rejected: %v", c.Note, err)
		}
	}
	for _, c := range invalid {
		obj, err := atdata.UnmarshalJSON(c.JSON)
		if err == nil {
			// Not refused by the parser: the record encoder must refuse it.
			if _, _, err = commit.EncodeRecord(syntax.NSID("com.example.record"), obj); err == nil {
				t.Errorf("invalid %q accepted", c.Note)
			}
		}
	}
}

// Signing and verification follow the crypto fixtures: low-S compact
// signatures only, both curves.
func TestInteropSignatures(t *testing.T) {
	var cases []struct {
		Comment            string   `json:"comment"`
		MessageBase64      string   `json:"messageBase64"`
		Algorithm          string   `json:"algorithm"`
		PublicKeyDid       string   `json:"publicKeyDid"`
		PublicKeyMultibase string   `json:"publicKeyMultibase"`
		SignatureBase64    string   `json:"signatureBase64"`
		ValidSignature     bool     `json:"validSignature"`
		Tags               []string `json:"tags"`
	}
	readJSON(t, "signature-fixtures.json", &cases)
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range cases {
		msg, err := base64.RawStdEncoding.DecodeString(c.MessageBase64)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := base64.RawStdEncoding.DecodeString(c.SignatureBase64)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := commit.ParsePublicKey(c.PublicKeyDid)
		if err != nil {
			t.Fatalf("%s: parse key: %v", c.Comment, err)
		}
		if pub.DIDKey() != c.PublicKeyDid {
			t.Fatalf("%s: re-encoded key %s", c.Comment, pub.DIDKey())
		}
		raw, err := base58.Decode(c.PublicKeyMultibase[1:])
		if err != nil {
			t.Fatal(err)
		}
		var legacy atcrypto.PublicKey
		if c.Algorithm == "ES256" {
			legacy, err = atcrypto.ParsePublicBytesP256(raw)
		} else {
			legacy, err = atcrypto.ParsePublicBytesK256(raw)
		}
		if err != nil || !legacy.Equal(pub) {
			t.Fatalf("%s: multibase key differs from did:key (%v)", c.Comment, err)
		}
		err = pub.HashAndVerify(msg, sig)
		if c.ValidSignature && err != nil {
			t.Errorf("%s: valid signature refused: %v", c.Comment, err)
		}
		if !c.ValidSignature && err == nil {
			t.Errorf("%s: invalid signature (%v) accepted", c.Comment, c.Tags)
		}
	}
}

func TestInteropDIDKeys(t *testing.T) {
	var k256 []struct {
		PrivateKeyBytesHex string `json:"privateKeyBytesHex"`
		PublicDidKey       string `json:"publicDidKey"`
	}
	var p256 []struct {
		PrivateKeyBytesBase58 string `json:"privateKeyBytesBase58"`
		PublicDidKey          string `json:"publicDidKey"`
	}
	readJSON(t, "w3c_didkey_K256.json", &k256)
	readJSON(t, "w3c_didkey_P256.json", &p256)
	if len(k256) == 0 || len(p256) == 0 {
		t.Fatal("no cases")
	}
	check := func(priv atcrypto.PrivateKey, want string) {
		t.Helper()
		pub, err := priv.PublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if got := pub.DIDKey(); got != want {
			t.Errorf("did:key %s, want %s", got, want)
		}
		if _, err := commit.ParsePublicKey(want); err != nil {
			t.Errorf("parse %s: %v", want, err)
		}
	}
	for _, c := range k256 {
		b, err := hex.DecodeString(c.PrivateKeyBytesHex)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := atcrypto.ParsePrivateBytesK256(b)
		if err != nil {
			t.Fatal(err)
		}
		check(priv, c.PublicDidKey)
	}
	for _, c := range p256 {
		b, err := base58.Decode(c.PrivateKeyBytesBase58)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := atcrypto.ParsePrivateBytesP256(b)
		if err != nil {
			t.Fatal(err)
		}
		check(priv, c.PublicDidKey)
	}
}
