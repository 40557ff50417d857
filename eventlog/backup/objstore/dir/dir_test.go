package dir_test

import (
	"testing"

	"github.com/pdslog/pdslog/eventlog/backup/objstore"
	"github.com/pdslog/pdslog/eventlog/backup/objstore/dir"
	"github.com/pdslog/pdslog/eventlog/backup/objstore/objstoretest"
)

func TestConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		st, err := dir.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}
