package events_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/events"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden (only for a new type, never a shipped one)")

// goldenKey is a fixed K-256 key, so the signing key fixture is stable.
const goldenKey = "z3vLZrRXRCvcga1XH8rA36xHVifUzvno7VCSe2vgcqVqppea"

// samples are one fixed payload per type, with every field set.
func samples(t *testing.T) []events.Payload {
	key, err := atcrypto.ParsePrivateMultibase(goldenKey)
	if err != nil {
		t.Fatal(err)
	}
	return []events.Payload{
		&events.AccountCreated{Handle: "alice.test", Email: "alice@example.com",
			PasswordHash: "0123456789abcdef0123456789abcdef:feedface", InviteCode: "localhost-abcde-fghij", CreatedAt: "2026-01-02T03:04:05.678Z"},
		&events.Password{PasswordHash: "00112233445566778899aabbccddeeff:c0ffee"},
		&events.Email{Email: "alice@example.org", Confirmed: true},
		&events.SessionCreated{ID: "c2Vzc2lvbg", AppPassword: "phone", Privileged: true, CreatedAt: "2026-01-02T03:04:05Z", ExpiresAt: "2026-04-02T03:04:05Z"},
		&events.SessionRotated{Old: "b2xk", New: "bmV3", At: "2026-01-03T00:00:00Z", ExpiresAt: "2026-04-03T00:00:00Z"},
		&events.SessionRevoked{ID: "bmV3", Reason: "logout"},
		&events.AppPasswordCreated{Name: "phone", Hash: "aabb:ccdd", Privileged: true, CreatedAt: "2026-01-02T03:04:05Z"},
		&events.AppPasswordRevoked{Name: "phone"},
		&events.InviteCreated{Code: "localhost-abcde-fghij", Available: 5, ForAccount: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", CreatedBy: "admin", CreatedAt: "2026-01-02T03:04:05Z"},
		&events.InviteDisabled{Codes: []string{"localhost-abcde-fghij", "localhost-klmno-pqrst"}},
		&events.PreferencesPut{Values: []json.RawMessage{json.RawMessage(`{"$type":"app.bsky.actor.defs#adultContentPref","enabled":true}`)},
			Keep: []string{"app.bsky.actor.defs#personalDetailsPref"}},
		&events.BlobUploaded{CID: "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy", MimeType: "image/png", DeclaredMime: "image/jpeg", Size: 1234},
		&events.BlobDeleted{CID: "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy", Reason: "unreferenced"},
		&events.BlobQuarantine{CID: "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy", On: true},
		&events.SigningKey{Key: key},
		&events.EmailTokenIssued{Purpose: events.PurposeResetPassword, Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
			Email: "alice@example.com", ExpiresAt: "2026-01-02T03:19:05Z"},
		&events.EmailTokenUsed{Purpose: events.PurposeConfirmEmail},
		&events.EmailAuthFactor{Enabled: true},
		&events.RepoImported{Commit: "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm", Rev: "3jzfcijpj2z2a",
			Data: "bafyreif5tr2gm2zejxcv5zjzqjnbfyqrtwibwnqsr3wl3nmrg3q7wo2x4i", Records: 12345, Commits: 63,
			Head: "bafyreihcfqk5hvhbk4tdpilxiorxp7wwpkptbgp7yskqaal5jsvcywdjdi"},
		&events.OAuthRequest{ID: "req-6f3c1a0b9d2e4f5a8b7c6d5e4f3a2b1c", ClientID: "https://app.example.com/oauth-client-metadata.json",
			ClientAuth: events.OAuthClientAuth{Method: "private_key_jwt", KeyID: "k1", JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, Confidential: true,
			RedirectURI: "https://app.example.com/callback", Scope: "atproto transition:generic", State: "c3RhdGU",
			CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", LoginHint: "alice.test", Prompt: "consent", ResponseMode: "query",
			DPoPJKT: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", CreatedAt: "2026-01-02T03:04:05Z", ExpiresAt: "2026-01-02T03:09:05Z"},
		&events.OAuthRequestBound{ID: "req-6f3c1a0b9d2e4f5a8b7c6d5e4f3a2b1c", Device: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", ExpiresAt: "2026-01-02T03:10:05Z"},
		&events.OAuthRequestEnded{ID: "req-6f3c1a0b9d2e4f5a8b7c6d5e4f3a2b1c", Reason: "access_denied"},
		&events.OAuthCode{RequestID: "req-6f3c1a0b9d2e4f5a8b7c6d5e4f3a2b1c", CodeHash: "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9",
			ClientID: "https://app.example.com/oauth-client-metadata.json", Scope: "atproto transition:generic",
			Device: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", ExpiresAt: "2026-01-02T03:11:05Z"},
		&events.OAuthDeviceSignIn{Device: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", Remember: true, At: "2026-01-02T03:05:05Z",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64)", IP: "203.0.113.7"},
		&events.OAuthDeviceSignOut{Device: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},
		&events.OAuthSession{ID: "ses-0a1b2c3d4e5f60718293a4b5c6d7e8f9", ClientID: "https://app.example.com/oauth-client-metadata.json",
			ClientAuth: events.OAuthClientAuth{Method: "none"}, Scope: "atproto transition:generic", DPoPJKT: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
			CodeHash: "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9", RefreshHash: "4e07408562bedb8b60ce05c1decfe3ad16b72230967de01f640b7e4729b49fce",
			TokenID: "tok-00112233445566778899aabbccddeeff", Device: "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
			CreatedAt: "2026-01-02T03:06:05Z", ExpiresAt: "2026-01-16T03:06:05Z", SessionExpiresAt: "2026-01-16T03:06:05Z"},
		&events.OAuthRefreshed{ID: "ses-0a1b2c3d4e5f60718293a4b5c6d7e8f9", RefreshHash: "4b227777d4dd1fc61c6f884f48641d02b4d121d3fd328cb08b5531fcacdabf8a",
			TokenID: "tok-ffeeddccbbaa99887766554433221100", At: "2026-01-02T04:06:05Z", ExpiresAt: "2026-01-16T03:06:05Z"},
		&events.OAuthRevoked{ID: "ses-0a1b2c3d4e5f60718293a4b5c6d7e8f9", Reason: "refresh token replayed"},
		&events.KeyReserved{Key: goldenKey},
		&events.DeletionScheduled{At: "2026-02-01T00:00:00Z"},
		&events.AccountTakedown{Applied: true, Ref: "1767323045"},
		&events.RecordTakedown{Collection: "app.bsky.feed.post", RKey: "3jzfcijpj2z2a", Applied: true, Ref: "ozone-42"},
		&events.AccountInvites{Disabled: true},
	}
}

// TestGolden: each type's fixture decodes to its sample payload, and New
// still writes exactly the fixture's bytes, with the type name and secrecy
// the log has always recorded for it.
func TestGolden(t *testing.T) {
	secret := map[string]bool{events.TypeAccountCreated: true, events.TypePassword: true,
		events.TypeAppPasswordCreated: true, events.TypeSigningKey: true, events.TypeEmailTokenIssued: true, events.TypeKeyReserved: true,
		events.TypeOAuthRequest: true, events.TypeOAuthDeviceSignIn: true}
	seen := map[string]bool{}
	for _, p := range samples(t) {
		t.Run(p.Type(), func(t *testing.T) {
			seen[p.Type()] = true
			ev, err := events.New("did:plc:ewvi7nxzyoun6zhxrhs64oiz", p)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != eventlog.KindPrivate || ev.Private.Type != p.Type() || ev.Private.Secret != secret[p.Type()] {
				t.Fatalf("event kind %v type %q secret %v, want private %q secret %v", ev.Kind, ev.Private.Type, ev.Private.Secret, p.Type(), secret[p.Type()])
			}
			path := filepath.Join("testdata", p.Type()+".golden")
			if *update {
				if err := os.WriteFile(path, ev.Private.Data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("no fixture for %s (a new type: run with -update once): %v", p.Type(), err)
			}
			if !bytes.Equal(ev.Private.Data, want) {
				t.Errorf("New writes\n%s\nthe fixture holds\n%s", ev.Private.Data, want)
			}
			got, err := events.Decode(&eventlog.Private{Type: p.Type(), Data: want})
			if err != nil {
				t.Fatal(err)
			}
			if sk, ok := p.(*events.SigningKey); ok {
				if got.(*events.SigningKey).Key.Multibase() != sk.Key.Multibase() {
					t.Fatalf("signing key decodes to another key")
				}
				return
			}
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("fixture decodes to %+v, want %+v", got, p)
			}
		})
	}
	for _, typ := range events.Types() {
		if !seen[typ] {
			t.Errorf("catalogue type %s has no sample (and so no golden fixture)", typ)
		}
	}
	files, _ := filepath.Glob("testdata/*.golden")
	for _, f := range files {
		if typ := strings.TrimSuffix(filepath.Base(f), ".golden"); !seen[typ] {
			t.Errorf("fixture %s names no catalogue type", f)
		}
	}
}

// TestOldFieldsStillDecode: a payload written before a field existed
// decodes, with the field at its zero value, and unknown fields of a newer
// writer are ignored.
func TestOldFieldsStillDecode(t *testing.T) {
	p, err := events.Decode(&eventlog.Private{Type: events.TypeBlobUploaded, Data: []byte(`{"cid":"x","mimeType":"image/png","size":3,"fromTheFuture":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.(*events.BlobUploaded); *got != (events.BlobUploaded{CID: "x", MimeType: "image/png", Size: 3}) {
		t.Fatalf("got %+v", got)
	}
}

func TestDecodeRefuses(t *testing.T) {
	if _, err := events.Decode(&eventlog.Private{Type: "nope.unknown", Data: []byte(`{}`)}); !errors.Is(err, events.ErrUnknownType) {
		t.Fatalf("unknown type: %v, want ErrUnknownType", err)
	}
	if _, err := events.Decode(&eventlog.Private{Type: events.TypeEmail, Data: []byte(`{"email":`)}); err == nil {
		t.Fatal("truncated JSON decoded")
	}
	if _, err := events.Decode(&eventlog.Private{Type: events.TypeSigningKey, Data: []byte(`not a key`)}); err == nil {
		t.Fatal("a bad signing key decoded")
	}
	if _, err := events.New("did:plc:x", &events.SigningKey{}); err == nil {
		t.Fatal("New encoded a signing key without a key")
	}
	if _, err := events.New("did:plc:x", &events.AccountCreated{PasswordHash: "h"}); err == nil {
		t.Fatal("New encoded an account without a handle")
	}
	if _, err := events.Decode(&eventlog.Private{Type: events.TypeAccountCreated, Data: []byte(`{"passwordHash":"h"}`)}); err == nil {
		t.Fatal("an account without a handle decoded")
	}
}

// FuzzDecode: no input makes Decode panic, and whatever decodes re-encodes
// to something that decodes to the same payload (empty and absent lists
// being the same).
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.golden")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(strings.TrimSuffix(filepath.Base(p), ".golden"), b)
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		p, err := events.Decode(&eventlog.Private{Type: typ, Data: data})
		if err != nil {
			return
		}
		ev, err := events.New("did:plc:x", p)
		if err != nil {
			t.Fatalf("decoded %s payload does not re-encode: %v", typ, err)
		}
		q, err := events.Decode(ev.Private)
		if err != nil {
			t.Fatalf("re-encoded %s payload does not decode: %v", typ, err)
		}
		// An empty list and an absent one mean the same (omitempty writes
		// neither); every other difference is a change of meaning.
		if _, raw := p.(*events.SigningKey); !raw && !cmp.Equal(p, q, cmpopts.EquateEmpty()) {
			t.Fatalf("round trip changed %s: %s", typ, cmp.Diff(p, q))
		}
	})
}
