// Command cborgen writes eventlog's cbor_gen.go. Run it from the module root:
//
//	go run ./eventlog/internal/cborgen
package main

import (
	"log"

	cbg "github.com/whyrusleeping/cbor-gen"

	"github.com/pdslog/pdslog/eventlog"
)

func main() {
	g := cbg.Gen{MaxByteLength: 4 << 20, MaxArrayLength: 8192, MaxStringLength: 1 << 20}
	if err := g.WriteMapEncodersToFile("eventlog/cbor_gen.go", "eventlog",
		eventlog.EventV1{}, eventlog.CommitV1{}, eventlog.OpV1{}, eventlog.SyncV1{},
		eventlog.IdentityV1{}, eventlog.AccountV1{}, eventlog.PrivateV1{}, eventlog.HeadV1{},
	); err != nil {
		log.Fatal(err)
	}
}
