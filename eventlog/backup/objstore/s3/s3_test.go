package s3_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/pdslog/pdslog/eventlog/backup/objstore"
	"github.com/pdslog/pdslog/eventlog/backup/objstore/objstoretest"
	"github.com/pdslog/pdslog/eventlog/backup/objstore/s3"
)

// The suite over gofakes3 on loopback, each subtest under its own prefix
// of one bucket (so a prefix keeps stores apart, as backups share buckets).
func TestConformance(t *testing.T) {
	srv := objstoretest.StartFakeS3(t)
	var n atomic.Int64
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		st, err := s3.New(s3.Options{Bucket: objstoretest.FakeBucket, Prefix: fmt.Sprintf("p%d/", n.Add(1)), Endpoint: srv.URL,
			ForcePathStyle: true, AccessKeyID: objstoretest.FakeKeyID, SecretAccessKey: objstoretest.FakeSecret})
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

func TestOptions(t *testing.T) {
	for _, o := range []s3.Options{
		{AccessKeyID: "k", SecretAccessKey: "s", Endpoint: "http://x"},
		{Bucket: "b", Endpoint: "http://x"},
		{Bucket: "b", AccessKeyID: "k", SecretAccessKey: "s"},
		{Bucket: "b", AccessKeyID: "k", SecretAccessKey: "s", Endpoint: "http://x", Prefix: "noslash"},
		{Bucket: "b", AccessKeyID: "k", SecretAccessKey: "s", Endpoint: "http://x", Prefix: "/abs/"},
	} {
		if _, err := s3.New(o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}
