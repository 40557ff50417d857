package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/backup"
	"github.com/pdslog/pdslog/eventlog/blobstore"
)

// backupStatePath is where a data dir records the backup generation it
// ships into (never shipped, never restored: a restored data dir starts a
// new generation).
const backupStatePath = "backup/state.json"

// backupSettings are the continuous backup's settings, shared by serve
// (shipping when PDSLOG_BACKUP_URL is set), `pdslog backup` and
// `pdslog restore`.
type backupSettings struct {
	url          string
	s3           backup.S3Config
	passphrase   string
	recipient    string
	identityFile string
	rpo          time.Duration
	lagWarn      time.Duration
	purgeWindow  time.Duration
	seqReserve   uint64
	scryptWork   int
	segmentBytes int
}

func (s *backupSettings) register(f *flags, urlFlag bool) {
	if urlFlag {
		f.String(&s.url, "backup-url", "", "ship the log continuously to s3://BUCKET/PREFIX (or file:///PATH); off when empty", "PDSLOG_BACKUP_URL")
	}
	f.String(&s.s3.Endpoint, "backup-s3-endpoint", "", "S3-compatible endpoint of the backup bucket, e.g. https://ACCOUNT.r2.cloudflarestorage.com (default: AWS)", "PDSLOG_BACKUP_S3_ENDPOINT")
	f.String(&s.s3.Region, "backup-s3-region", "", "region of the backup bucket (default: auto when an endpoint is set)", "PDSLOG_BACKUP_S3_REGION")
	f.String(&s.s3.AccessKeyID, "backup-s3-access-key-id", "", "access key id for the backup bucket", "PDSLOG_BACKUP_S3_ACCESS_KEY_ID")
	f.Secret(&s.s3.SecretAccessKey, "backup-s3-secret-access-key", "secret access key for the backup bucket", "PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY")
	f.Bool(&s.s3.ForcePathStyle, "backup-s3-force-path-style", false, "address the backup bucket in the URL path (MinIO, emulators)", "PDSLOG_BACKUP_S3_FORCE_PATH_STYLE")
	f.Secret(&s.passphrase, "backup-passphrase", "passphrase the keys/ backup is encrypted with (age scrypt); restore asks for it", "PDSLOG_BACKUP_PASSPHRASE")
	f.String(&s.recipient, "backup-age-recipient", "", "instead of a passphrase: age public key (age1…) the keys/ backup is encrypted to", "PDSLOG_BACKUP_AGE_RECIPIENT")
	f.String(&s.identityFile, "backup-age-identity-file", "", "restore: file holding the age identity (AGE-SECRET-KEY-1…) for --backup-age-recipient", "PDSLOG_BACKUP_AGE_IDENTITY_FILE")
	f.Duration(&s.rpo, "backup-rpo", backup.DefaultRPO, "longest a durable event waits before it is shipped (segments are cut at half of it)", "PDSLOG_BACKUP_RPO")
	f.Duration(&s.lagWarn, "backup-lag-warn", 0, "warn while the oldest unshipped event is older than this (default 10×RPO, at least 10s)", "PDSLOG_BACKUP_LAG_WARN")
	f.Duration(&s.purgeWindow, "backup-purge-window", backup.DefaultCompactEvery, "how often account deletions are applied to the backup (deleted data leaves it within this)", "PDSLOG_BACKUP_PURGE_WINDOW")
	f.Uint64(&s.seqReserve, "backup-seq-reserve", backup.DefaultSeqReserve, "seqs reserved in the backup ahead of the log's head, so a restore never reuses one relays saw", "PDSLOG_BACKUP_SEQ_RESERVE")
	f.Int(&s.scryptWork, "backup-scrypt-work-factor", 18, "log2 cost of the passphrase's key derivation (age scrypt; 10..22)", "PDSLOG_BACKUP_SCRYPT_WORK_FACTOR")
	f.Int(&s.segmentBytes, "backup-segment-bytes", backup.DefaultSegmentBytes, "records per segment before it is cut, in bytes (uncompressed)", "PDSLOG_BACKUP_SEGMENT_BYTES")
}

// validate checks the settings before anything is opened. urlEnv names
// the variable the URL came from; ship says the keys must be sealable.
func (s *backupSettings) validate(urlEnv string, ship bool) error {
	bad := func(env, format string, args ...any) error {
		return usageError{fmt.Sprintf("%s: %s", env, fmt.Sprintf(format, args...))}
	}
	if s.url == "" {
		return bad(urlEnv, "not set")
	}
	scheme, _, _, err := backup.ParseURL(s.url)
	if err != nil {
		return bad(urlEnv, "%v", err)
	}
	if scheme == "s3" {
		switch {
		case s.s3.AccessKeyID == "":
			return bad("PDSLOG_BACKUP_S3_ACCESS_KEY_ID", "not set (needed for %s)", s.url)
		case s.s3.SecretAccessKey == "":
			return bad("PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY", "not set (needed for %s)", s.url)
		case s.s3.Endpoint == "" && s.s3.Region == "":
			return bad("PDSLOG_BACKUP_S3_REGION", "not set (required without PDSLOG_BACKUP_S3_ENDPOINT)")
		}
		if s.s3.Endpoint != "" && !strings.HasPrefix(s.s3.Endpoint, "http://") && !strings.HasPrefix(s.s3.Endpoint, "https://") {
			return bad("PDSLOG_BACKUP_S3_ENDPOINT", "%q is not an http(s) URL", s.s3.Endpoint)
		}
	}
	if s.recipient != "" {
		if _, err := age.ParseX25519Recipient(s.recipient); err != nil {
			return bad("PDSLOG_BACKUP_AGE_RECIPIENT", "not an age public key (age1…): %v", err)
		}
	}
	if ship && s.passphrase == "" && s.recipient == "" {
		return bad("PDSLOG_BACKUP_PASSPHRASE", "not set: keys/ (the log's seal key among them) is backed up only encrypted; set a passphrase or PDSLOG_BACKUP_AGE_RECIPIENT")
	}
	switch {
	case s.rpo <= 0:
		return bad("PDSLOG_BACKUP_RPO", "must be positive, got %s", s.rpo)
	case s.lagWarn < 0:
		return bad("PDSLOG_BACKUP_LAG_WARN", "must not be negative, got %s", s.lagWarn)
	case s.purgeWindow <= 0:
		return bad("PDSLOG_BACKUP_PURGE_WINDOW", "must be positive, got %s", s.purgeWindow)
	case s.seqReserve == 0:
		return bad("PDSLOG_BACKUP_SEQ_RESERVE", "must be positive")
	case s.scryptWork < 10 || s.scryptWork > 22:
		return bad("PDSLOG_BACKUP_SCRYPT_WORK_FACTOR", "%d: must be 10..22", s.scryptWork)
	case s.segmentBytes < 4<<10 || s.segmentBytes > backup.MaxSegmentRaw/2:
		return bad("PDSLOG_BACKUP_SEGMENT_BYTES", "%d: must be 4096..%d", s.segmentBytes, backup.MaxSegmentRaw/2)
	}
	return nil
}

func (s *backupSettings) target() (*backup.Target, error) { return backup.OpenTarget(s.url, s.s3) }

// recipients are what the keys backup is sealed to.
func (s *backupSettings) recipients() ([]age.Recipient, string, error) {
	if s.recipient != "" {
		r, err := age.ParseX25519Recipient(s.recipient)
		return []age.Recipient{r}, "recipient", err
	}
	if s.passphrase == "" {
		return nil, "", nil
	}
	r, _, err := backup.PassphraseKeys(s.passphrase, s.scryptWork)
	return []age.Recipient{r}, "passphrase", err
}

// shipper builds the shipper of the data dir at dataDir. local is the
// blob store serve writes; when blobs are kept in S3 (external set) the
// manifest records where, and nothing is copied.
func (s *backupSettings) shipper(l *eventlog.Log, dataDir string, local blobstore.Store, external *backup.BlobsInfo, logger *slog.Logger) (*backup.Shipper, error) {
	t, err := s.target()
	if err != nil {
		return nil, err
	}
	rcpt, method, err := s.recipients()
	if err != nil {
		return nil, err
	}
	o := backup.Options{Log: l, Target: t, StatePath: filepath.Join(dataDir, backupStatePath),
		KeysDir: filepath.Join(dataDir, filepath.Dir(pds.SealKeyPath)), KeysRecipients: rcpt, KeysMethod: method,
		RPO: s.rpo, LagWarn: s.lagWarn, CompactEvery: s.purgeWindow, SeqReserve: s.seqReserve,
		SegmentBytes: s.segmentBytes, Logger: logger}
	if external != nil {
		o.ExternalBlobs = external
	} else {
		o.LocalBlobs = local
	}
	return backup.New(o)
}

// backupShipper builds the shipper serve runs beside the projections
// (nil when PDSLOG_BACKUP_URL is unset): it logs and retries its failures
// and never stops serve; its metrics join the server's registry. Blobs on
// disk are shipped; blobs in S3 are recorded where they are.
func (cfg *serveConfig) backupShipper(d *pds.PDS, reg prometheus.Registerer, logger *slog.Logger) (*backup.Shipper, error) {
	if cfg.backup == nil {
		return nil, nil
	}
	logger = logger.With("component", "backup")
	var external *backup.BlobsInfo
	if cfg.blobs.s3 != nil {
		external = &backup.BlobsInfo{Location: backup.BlobsExternal, Bucket: cfg.blobs.bucket, Endpoint: cfg.blobs.endpoint}
	}
	sh, err := cfg.backup.shipper(d.Log, cfg.dataDir, d.BlobStore, external, logger)
	if err != nil {
		return nil, fmt.Errorf("PDSLOG_BACKUP_URL: %w", err)
	}
	if reg != nil {
		if err := sh.Register(reg); err != nil && !errors.As(err, &prometheus.AlreadyRegisteredError{}) {
			return nil, err
		}
	}
	logger.Info("shipping the log", "url", cfg.backup.url, "rpo", cfg.backup.rpo)
	return sh, nil
}

// readIdentities returns the identities restore opens the keys with: the
// passphrase's, or those in the identity file.
func (s *backupSettings) identities() ([]age.Identity, error) {
	var ids []age.Identity
	if s.identityFile != "" {
		f, err := os.Open(s.identityFile)
		if err != nil {
			return nil, usageError{fmt.Sprintf("PDSLOG_BACKUP_AGE_IDENTITY_FILE: %v", err)}
		}
		defer f.Close()
		parsed, err := age.ParseIdentities(f)
		if err != nil {
			return nil, usageError{fmt.Sprintf("PDSLOG_BACKUP_AGE_IDENTITY_FILE: %v", err)}
		}
		ids = append(ids, parsed...)
	}
	if s.passphrase != "" {
		_, id, err := backup.PassphraseKeys(s.passphrase, s.scryptWork)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}
