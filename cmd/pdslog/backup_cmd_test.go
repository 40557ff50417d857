package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pdslog/pdslog/api/pds"
	"github.com/pdslog/pdslog/eventlog"
	"github.com/pdslog/pdslog/eventlog/backup/objstore/objstoretest"
)

// Backup settings are checked before anything is opened, each mistake
// named by its variable, exit 2 — for serve, backup and restore alike.
func TestBackupRefusesBadSettings(t *testing.T) {
	good := map[string]string{"PDSLOG_BACKUP_URL": "s3://bucket/pds", "PDSLOG_BACKUP_S3_ENDPOINT": "http://127.0.0.1:1",
		"PDSLOG_BACKUP_S3_ACCESS_KEY_ID": "k", "PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY": "s", "PDSLOG_BACKUP_PASSPHRASE": "p"}
	tests := []struct {
		cmd        []string
		env, value string
		want       string
	}{
		{[]string{"serve"}, "PDSLOG_BACKUP_URL", "http://bucket/pds", "PDSLOG_BACKUP_URL"},
		{[]string{"serve"}, "PDSLOG_BACKUP_URL", "s3:///nobucket", "PDSLOG_BACKUP_URL"},
		{[]string{"serve"}, "PDSLOG_BACKUP_URL", "file://relative/path", "PDSLOG_BACKUP_URL"},
		{[]string{"serve"}, "PDSLOG_BACKUP_S3_ACCESS_KEY_ID", "", "PDSLOG_BACKUP_S3_ACCESS_KEY_ID"},
		{[]string{"serve"}, "PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY", "", "PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY"},
		{[]string{"serve"}, "PDSLOG_BACKUP_S3_ENDPOINT", "", "PDSLOG_BACKUP_S3_REGION"},
		{[]string{"serve"}, "PDSLOG_BACKUP_S3_ENDPOINT", "ftp://x", "PDSLOG_BACKUP_S3_ENDPOINT"},
		{[]string{"serve"}, "PDSLOG_BACKUP_PASSPHRASE", "", "PDSLOG_BACKUP_PASSPHRASE"},
		{[]string{"serve"}, "PDSLOG_BACKUP_AGE_RECIPIENT", "age1nope", "PDSLOG_BACKUP_AGE_RECIPIENT"},
		{[]string{"serve"}, "PDSLOG_BACKUP_RPO", "0", "PDSLOG_BACKUP_RPO"},
		{[]string{"serve"}, "PDSLOG_BACKUP_RPO", "soon", "PDSLOG_BACKUP_RPO"},
		{[]string{"serve"}, "PDSLOG_BACKUP_PURGE_WINDOW", "0", "PDSLOG_BACKUP_PURGE_WINDOW"},
		{[]string{"serve"}, "PDSLOG_BACKUP_SEQ_RESERVE", "0", "PDSLOG_BACKUP_SEQ_RESERVE"},
		{[]string{"serve"}, "PDSLOG_BACKUP_SCRYPT_WORK_FACTOR", "30", "PDSLOG_BACKUP_SCRYPT_WORK_FACTOR"},
		{[]string{"serve"}, "PDSLOG_BACKUP_S3_FORCE_PATH_STYLE", "perhaps", "PDSLOG_BACKUP_S3_FORCE_PATH_STYLE"},
		{[]string{"backup", "--once"}, "PDSLOG_BACKUP_URL", "", "PDSLOG_BACKUP_URL: not set"},
		{[]string{"backup", "--once"}, "PDSLOG_BACKUP_PASSPHRASE", "", "PDSLOG_BACKUP_PASSPHRASE"},
		{[]string{"backup", "status"}, "PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY", "", "PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY"},
		{[]string{"restore"}, "PDSLOG_BACKUP_URL", "", "PDSLOG_BACKUP_URL"},
		{[]string{"restore", "--at", "yesterday"}, "PDSLOG_BACKUP_RPO", "1s", "--at"},
		{[]string{"restore", "--at", "2026-01-01T00:00:00Z", "--seq", "5"}, "PDSLOG_BACKUP_RPO", "1s", "exclusive"},
		{[]string{"restore"}, "PDSLOG_BACKUP_PASSPHRASE", "", "PDSLOG_BACKUP_PASSPHRASE: not set, and no terminal"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.cmd, " ")+" "+tt.env+"="+tt.value, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			t.Setenv("PDS_DATA_DIRECTORY", dir)
			for k, v := range good {
				t.Setenv(k, v)
			}
			t.Setenv(tt.env, tt.value)
			code, out, errOut := runCmd(t, t.Context(), tt.cmd...)
			if code != exitUsage || !strings.Contains(errOut, tt.want) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q), stdout %q", code, exitUsage, errOut, tt.want, out)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Fatal("a refused command touched the data dir")
			}
		})
	}
}

// --help never prints the backup's secrets, whichever command.
func TestBackupHelpHidesSecrets(t *testing.T) {
	t.Setenv("PDSLOG_BACKUP_PASSPHRASE", "hunter2-passphrase-secret")
	t.Setenv("PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY", "s3-secret-value-xyz")
	for _, cmd := range []string{"serve", "backup", "restore"} {
		code, out, errOut := runCmd(t, t.Context(), cmd, "--help")
		if code != exitOK || !strings.Contains(errOut+out, "PDSLOG_BACKUP_PASSPHRASE") {
			t.Fatalf("%s --help: exit %d\n%s", cmd, code, errOut)
		}
		if strings.Contains(out+errOut, "hunter2-passphrase-secret") || strings.Contains(out+errOut, "s3-secret-value-xyz") {
			t.Fatalf("%s --help printed a secret", cmd)
		}
	}
}

// The commands end to end on a stopped data dir: `backup --once` ships
// it, `backup status` says it is caught up, `restore` rebuilds the same
// projections (full, and at a seq), refuses a wrong passphrase (exit 2)
// and a data dir that holds a log; `backup` of a data dir in use exits 75.
func TestBackupCommands(t *testing.T) {
	src := fillDataDir(t, 400)
	s3 := objstoretest.StartFakeS3(t)
	url := "s3://" + objstoretest.FakeBucket + "/cmd"
	t.Setenv("PDSLOG_BACKUP_S3_ENDPOINT", s3.URL)
	t.Setenv("PDSLOG_BACKUP_S3_ACCESS_KEY_ID", objstoretest.FakeKeyID)
	t.Setenv("PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY", objstoretest.FakeSecret)
	t.Setenv("PDSLOG_BACKUP_S3_FORCE_PATH_STYLE", "true")
	t.Setenv("PDSLOG_BACKUP_SCRYPT_WORK_FACTOR", "10")
	t.Setenv("PDSLOG_BACKUP_PASSPHRASE", "the passphrase")
	code, out, errOut := runCmd(t, t.Context(), "backup", "--once", "--data-dir", src, "--backup-url", url, "--log-format", "text")
	if code != exitOK || !strings.Contains(out, "caught up with seq") {
		t.Fatalf("backup --once: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Log(strings.TrimSpace(out))
	code, out, errOut = runCmd(t, t.Context(), "backup", "status", "--data-dir", src, "--backup-url", url, "--max-lag", "1")
	if code != exitOK || !strings.Contains(out, "lag 0 events") || !strings.Contains(out, "remote head") {
		t.Fatalf("backup status: exit %d\n%s\n%s", code, out, errOut)
	}
	// The reference state of the source.
	code, _, errOut = runCmd(t, t.Context(), "replay", "--data-dir", src)
	if code != exitOK {
		t.Fatalf("replay: %s", errOut)
	}
	want, head := reposDigest(t, src)

	dst := filepath.Join(t.TempDir(), "restored")
	code, out, errOut = runCmd(t, t.Context(), "restore", "--from", url, "--data-dir", dst, "--log-format", "text")
	if code != exitOK {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	t.Log(strings.TrimSpace(out))
	got, cur := reposDigest(t, dst)
	// The restored log goes on past the source's head: the floor's
	// tombstones and a #sync per repo; the repos differ only by those.
	if cur <= head || len(got) == 0 || !strings.Contains(out, fmt.Sprintf("seqs 1..%d of %d restored", head, head)) {
		t.Fatalf("restored cursor %d (source head %d)\n%s", cur, head, out)
	}
	if len(want) == 0 {
		t.Fatal("source has no repos")
	}
	if code, out, errOut := runCmd(t, t.Context(), "replay", "--data-dir", dst, "--verify"); code != exitOK {
		t.Fatalf("replay --verify of the restore: %d\n%s\n%s", code, out, errOut)
	}

	// At a seq: the log holds exactly the source's first 150 events.
	at := filepath.Join(t.TempDir(), "at")
	if code, out, errOut := runCmd(t, t.Context(), "restore", "--from", url, "--data-dir", at, "--seq", "150"); code != exitOK {
		t.Fatalf("restore --seq: %d\n%s\n%s", code, out, errOut)
	}
	sd, err := pds.Open(src, &pds.Options{Command: "test", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ad, err := pds.Open(at, &pds.Options{Command: "test", Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for seq := eventlog.Seq(1); seq <= 151; seq++ {
		a, _ := sd.Log.Get(t.Context(), seq)
		b, err := ad.Log.Get(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if seq <= 150 && (a.Kind != b.Kind || a.DID != b.DID || a.Time != b.Time) {
			t.Fatalf("seq %d differs after restore --seq 150", seq)
		}
		if seq == 151 && b.Kind != eventlog.KindTombstone {
			t.Fatalf("seq 151 after restore --seq 150 is %s, want a floor tombstone", b.Kind)
		}
	}
	if ad.Log.Head() < sd.Log.Head() {
		t.Fatalf("restore --seq 150 head %d under the source's %d: seqs would be reused", ad.Log.Head(), sd.Log.Head())
	}
	ad.Close()

	// With the source held (as serve holds it), backup exits 75.
	code, _, errOut = runCmd(t, t.Context(), "backup", "--once", "--data-dir", src, "--backup-url", url)
	if code != exitTempFail || !strings.Contains(errOut, "in use") {
		t.Fatalf("backup of a held data dir: exit %d %s", code, errOut)
	}
	sd.Close()

	t.Setenv("PDSLOG_BACKUP_PASSPHRASE", "not the passphrase")
	code, _, errOut = runCmd(t, t.Context(), "restore", "--from", url, "--data-dir", filepath.Join(t.TempDir(), "wrong"))
	if code != exitUsage || !strings.Contains(errOut, "PDSLOG_BACKUP_PASSPHRASE") {
		t.Fatalf("restore with a wrong passphrase: exit %d %s", code, errOut)
	}
	t.Setenv("PDSLOG_BACKUP_PASSPHRASE", "the passphrase")
	code, _, errOut = runCmd(t, t.Context(), "restore", "--from", url, "--data-dir", dst)
	if code != exitFailure || !strings.Contains(errOut, "not empty") {
		t.Fatalf("restore over a log: exit %d %s", code, errOut)
	}
}
