package eventlog

import (
	"encoding/binary"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

const (
	prefixEvent byte = 'e'
	prefixRepo  byte = 'r'
	prefixHead  byte = 'h'
)

func eventKey(seq Seq) []byte {
	k := make([]byte, 9)
	k[0] = prefixEvent
	binary.BigEndian.PutUint64(k[1:], uint64(seq))
	return k
}

func seqOfEventKey(k []byte) (Seq, bool) {
	if len(k) != 9 || k[0] != prefixEvent {
		return 0, false
	}
	return Seq(binary.BigEndian.Uint64(k[1:])), true
}

// repoPrefix is 'r' did 0x00; DIDs never contain 0x00.
func repoPrefix(did syntax.DID) []byte {
	k := make([]byte, 0, len(did)+2+8)
	k = append(k, prefixRepo)
	k = append(k, did...)
	return append(k, 0)
}

func repoKey(did syntax.DID, seq Seq) []byte {
	return binary.BigEndian.AppendUint64(repoPrefix(did), uint64(seq))
}

func headKey(did syntax.DID) []byte {
	return append([]byte{prefixHead}, did...)
}
