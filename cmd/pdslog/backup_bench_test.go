package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pdslog/pdslog/api/apitest/plcserver"
	"github.com/pdslog/pdslog/cmd/pdslog/internal/bench"
	"github.com/pdslog/pdslog/eventlog/backup/objstore/objstoretest"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// backupEnv points the backup settings at a FakeS3 (gofakes3 on loopback).
func backupEnv(tb testing.TB, s3 *objstoretest.FakeS3) {
	tb.Setenv("PDSLOG_BACKUP_S3_ENDPOINT", s3.URL)
	tb.Setenv("PDSLOG_BACKUP_S3_ACCESS_KEY_ID", objstoretest.FakeKeyID)
	tb.Setenv("PDSLOG_BACKUP_S3_SECRET_ACCESS_KEY", objstoretest.FakeSecret)
	tb.Setenv("PDSLOG_BACKUP_S3_FORCE_PATH_STYLE", "true")
	tb.Setenv("PDSLOG_BACKUP_PASSPHRASE", "bench passphrase")
}

// BenchmarkBackupShipLag runs serve (in process) shipping to gofakes3 on
// loopback under `pdslog bench --mix write` with 16 clients on 16
// accounts, and reports the shipping lag (per event, from its append to
// its segment's upload acknowledged; p50 and p99 over a uniform sample),
// the bytes shipped per event (segments and manifests), and the write
// rate beside the same load on a server that does not ship. Duration:
// PDSLOG_BACKUP_BENCH_DURATION (default 10s).
//
//	go test -run '^$' -bench BackupShipLag -benchtime 1x ./cmd/pdslog/
func BenchmarkBackupShipLag(b *testing.B) {
	dur := 10 * time.Second
	if v := os.Getenv("PDSLOG_BACKUP_BENCH_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatal(err)
		}
		dur = d
	}
	plcSrv := plcserver.Start(b)
	s3 := objstoretest.StartFakeS3(b)
	backupEnv(b, s3)
	load := func(ship bool) (*bench.Report, map[string]any) {
		var logs eventlogtest.SyncBuffer
		args := []string{"--data-dir", b.TempDir(), "--plc-url", plcSrv.URL, "--rate-limits=false", "--invite-required=false", "--log-format", "json"}
		if ship {
			args = append(args, "--backup-url", "s3://"+objstoretest.FakeBucket+"/bench"+strconv.FormatInt(time.Now().UnixNano(), 36))
		}
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan string, 1)
		done := make(chan error, 1)
		cmd := &serveCommand{stdout: io.Discard, stderr: &logs, ready: ready}
		go func() { done <- cmd.run(ctx, append([]string{"--port", "0"}, args...)) }()
		var addr string
		select {
		case addr = <-ready:
		case err := <-done:
			b.Fatalf("serve: %v", err)
		}
		stop := func() {
			cancel()
			if err := <-done; err != nil {
				b.Fatalf("serve: %v", err)
			}
		}
		rep, _ := benchJSON(b, context.Background(), "--target", "http://"+addr, "--accounts", "16", "--concurrency", "16",
			"--mix", "write", "--duration", dur.String(), "--state", filepath.Join(b.TempDir(), "accounts.json"))
		stop()
		var summary map[string]any
		sc := bufio.NewScanner(strings.NewReader(logs.String()))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "backup stopped" {
				summary = m
			}
		}
		if ship && summary == nil {
			b.Fatalf("no 'backup stopped' line in serve's log")
		}
		return rep, summary
	}
	for b.Loop() {
		base, _ := load(false)
		rep, s := load(true)
		p50, p99 := s["lag_p50_seconds"].(float64), s["lag_p99_seconds"].(float64)
		perEvent := s["bytes_per_event"].(float64)
		b.ReportMetric(p99, "lag_p99_s")
		b.ReportMetric(perEvent, "bytes/event")
		b.ReportMetric(rep.Total.OpsPerSec/base.Total.OpsPerSec, "writes_ratio")
		fmt.Fprintf(os.Stderr, "backup ship: 16 clients x %s: %.0f writes/s shipping vs %.0f without (%.2fx); %v events in %v segments, %v manifest writes; "+
			"shipping lag p50 %.3fs p99 %.3fs (RPO 1s); %.1f bytes shipped per event\n",
			dur, rep.Total.OpsPerSec, base.Total.OpsPerSec, rep.Total.OpsPerSec/base.Total.OpsPerSec,
			s["events"], s["segments"], s["manifest_writes"], p50, p99, perEvent)
	}
}

// BenchmarkBackupRestore ships the log BenchmarkReplay generates
// (PDSLOG_REPLAY_EVENTS, default 50000; PDSLOG_REPLAY_DIR keeps it) to
// gofakes3 with `pdslog backup --once`, then times, on that one log,
// `pdslog replay` (every projection from zero), `pdslog restore` (download,
// verify every commit's signature and proof, write the log, rebuild every
// projection) and `restore --no-verify`, reporting events/s and their
// ratios, and bytes shipped per event.
//
//	PDSLOG_REPLAY_EVENTS=1000000 PDSLOG_REPLAY_DIR=/tmp go test -run '^$' -bench BackupRestore -benchtime 1x -timeout 2h ./cmd/pdslog/
func BenchmarkBackupRestore(b *testing.B) {
	events := envInt(b, "PDSLOG_REPLAY_EVENTS", 50_000)
	records := envInt(b, "PDSLOG_REPLAY_RECORDS", 100)
	accts := max(1, events/(records+accountEvents))
	dir := filepath.Join(b.TempDir(), "data")
	if keep := os.Getenv("PDSLOG_REPLAY_DIR"); keep != "" {
		dir = filepath.Join(keep, fmt.Sprintf("pdslog-replay-%dx%d", accts, records))
	}
	if _, err := os.Stat(filepath.Join(dir, "generated")); err != nil {
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		n := genReplayLog(b, dir, accts, records)
		if err := os.WriteFile(filepath.Join(dir, "generated"), []byte(strconv.Itoa(n)), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "generated"))
	head, _ := strconv.Atoi(string(raw))
	s3 := objstoretest.StartFakeS3(b)
	backupEnv(b, s3)
	url := "s3://" + objstoretest.FakeBucket + "/restore-bench"
	_ = os.Remove(filepath.Join(dir, backupStatePath)) // a kept dir ships afresh into this server
	ctx := context.Background()
	timed := func(args ...string) (time.Duration, string) {
		var out strings.Builder
		start := time.Now()
		if code := run(ctx, args, &out, io.Discard); code != exitOK {
			b.Fatalf("%v: exit %d\n%s", args, code, out.String())
		}
		return time.Since(start), out.String()
	}
	for b.Loop() {
		shipTook, shipOut := timed("backup", "--once", "--data-dir", dir, "--backup-url", url, "--log-level", "error")
		replayTook, _ := timed("replay", "--data-dir", dir, "--log-level", "error")
		verifyTook, _ := timed("replay", "--data-dir", dir, "--verify", "--log-level", "error")
		restoreTook, restoreOut := timed("restore", "--from", url, "--data-dir", filepath.Join(b.TempDir(), "r1"), "--log-level", "error")
		plainTook, _ := timed("restore", "--from", url, "--data-dir", filepath.Join(b.TempDir(), "r2"), "--no-verify", "--log-level", "error")
		rate := func(d time.Duration) float64 { return float64(head) / d.Seconds() }
		b.ReportMetric(rate(restoreTook), "restore_events/s")
		b.ReportMetric(rate(replayTook), "replay_events/s")
		b.ReportMetric(replayTook.Seconds()/restoreTook.Seconds(), "restore/replay_speed")
		b.ReportMetric(verifyTook.Seconds()/restoreTook.Seconds(), "restore/replay_verify_speed")
		fmt.Fprintf(os.Stderr, "backup restore: %d events; backup --once %s (%.0f events/s); replay %s (%.0f events/s); replay --verify %s (%.0f events/s); "+
			"restore %s (%.0f events/s: %.2fx replay's rate, %.2fx replay --verify's); restore --no-verify %s (%.0f events/s, %.2fx replay's)\n%s%s",
			head, shipTook.Round(time.Millisecond), rate(shipTook), replayTook.Round(time.Millisecond), rate(replayTook),
			verifyTook.Round(time.Millisecond), rate(verifyTook),
			restoreTook.Round(time.Millisecond), rate(restoreTook), replayTook.Seconds()/restoreTook.Seconds(), verifyTook.Seconds()/restoreTook.Seconds(),
			plainTook.Round(time.Millisecond), rate(plainTook), replayTook.Seconds()/plainTook.Seconds(), shipOut, restoreOut)
	}
}
