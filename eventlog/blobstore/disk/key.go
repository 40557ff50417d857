package disk

import (
	"errors"
	"fmt"
)

// maxName is the longest file name the common Linux filesystems take.
const maxName = 255

const upperHex = "0123456789ABCDEF"

// EncodeDID encodes a DID as one file name that is safe on any common
// filesystem, also case-insensitive ones: lower-case letters, digits, '-'
// and '.' stay (a leading '.' does not), ':' becomes '_' (which no DID
// contains), and every other byte becomes '%' and two upper-case hex
// digits. "did:plc:abc" is "did_plc_abc"; "did:web:Example.com%3A8080" is
// "did_web_%45xample.com%253%418080". DecodeDID reverses it.
func EncodeDID(did string) string {
	b := make([]byte, 0, len(did)+8)
	for i := 0; i < len(did); i++ {
		c := did[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '.' && i > 0:
			b = append(b, c)
		case c == ':':
			b = append(b, '_')
		default:
			b = append(b, '%', upperHex[c>>4], upperHex[c&15])
		}
	}
	return string(b)
}

// DecodeDID returns the DID EncodeDID encoded as name. It accepts only
// names EncodeDID produces, so two names never decode to the same DID.
func DecodeDID(name string) (string, error) {
	if name == "" {
		return "", errors.New("blobstore/disk: empty account name")
	}
	b := make([]byte, 0, len(name))
	for i := 0; i < len(name); i++ {
		switch c := name[i]; c {
		case '_':
			b = append(b, ':')
		case '%':
			if i+2 >= len(name) {
				return "", fmt.Errorf("blobstore/disk: bad account name %q", name)
			}
			hi, lo := unhex(name[i+1]), unhex(name[i+2])
			if hi < 0 || lo < 0 {
				return "", fmt.Errorf("blobstore/disk: bad account name %q", name)
			}
			b = append(b, byte(hi<<4|lo))
			i += 2
		default:
			b = append(b, c)
		}
	}
	did := string(b)
	if EncodeDID(did) != name {
		return "", fmt.Errorf("blobstore/disk: account name %q is not canonical", name)
	}
	return did, nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
