package bench

import (
	"encoding/binary"
	"errors"
)

// frame is what the bench's firehose subscribers need from a
// subscribeRepos frame: its type, seq, time and repo. The frame's blocks
// are skipped, never decoded, so many subscribers stay cheap.
type frame struct {
	op   int64
	typ  string
	seq  int64
	time string
	repo string // "repo" of #commit/#sync, "did" of #identity/#account
}

var errFrame = errors.New("bench: malformed firehose frame")

// parseFrame reads the DAG-CBOR header and body maps of a frame.
//
// Every subscriber scans every frame, so with hundreds of subscribers this
// is the load generator's hottest code, competing for the box's cores with
// the server it measures. It reads only the four fields a subscriber
// counts and skips the rest, the CAR slice of blocks included, without
// copying it.
//
// It is the repo's third small CBOR reader (after mst's node decoder and
// mst/car's header decoder), on purpose:
//
//   - mst/car (car.EachBlock, car.FindBlock) walks the sections of a CAR
//     slice, the frame body's "blocks" value; the subscriber never looks
//     inside it. What it reads is the DAG-CBOR envelope around it (the
//     header map and the body map), which no exported reader in the repo
//     parses, and mst/car's strict header decoder is for CAR headers only.
//   - indigo's events.XRPCStreamEvent.Deserialize decodes the whole body
//     into comatproto types: it copies the blocks, decodes every op and
//     CID, and allocates accordingly. BenchmarkParseFrame puts it at about
//     6x the time and 18x the bytes allocated of this scanner for a
//     createRecord-sized #commit (one run on the shared 2-core development
//     box: 7.7 µs, 2,483 B in 29 allocations against 1.2 µs, 136 B in 16),
//     a cost paid per subscriber per event. TestParseFrameAgreesWithIndigo
//     checks that the two read the same fields from every kind of frame
//     indigo encodes.
func parseFrame(b []byte) (frame, error) {
	var f frame
	r := &cborScan{b: b}
	if err := r.eachKey(func(k string) error { return f.headerKey(r, k) }); err != nil || f.op != 1 {
		return f, err
	}
	err := r.eachKey(func(k string) error { return f.bodyKey(r, k) })
	return f, err
}

// headerKey reads the value of the header's key k.
func (f *frame) headerKey(r *cborScan, k string) (err error) {
	switch k {
	case "op":
		f.op, err = r.int()
	case "t":
		f.typ, err = r.text()
	default:
		err = r.skip(0)
	}
	return err
}

// bodyKey reads the value of the body's key k.
func (f *frame) bodyKey(r *cborScan, k string) (err error) {
	switch k {
	case "seq":
		f.seq, err = r.uint()
	case "time":
		f.time, err = r.text()
	case "repo", "did":
		f.repo, err = r.text()
	default:
		err = r.skip(0)
	}
	return err
}

// cborScan walks DAG-CBOR (definite lengths only) without building values.
type cborScan struct {
	b   []byte
	off int
}

func (r *cborScan) head() (major byte, arg uint64, err error) {
	if r.off >= len(r.b) {
		return 0, 0, errFrame
	}
	c := r.b[r.off]
	r.off++
	major, info := c>>5, c&0x1f
	n := 0
	switch {
	case info < 24:
		return major, uint64(info), nil
	case info == 24:
		n = 1
	case info == 25:
		n = 2
	case info == 26:
		n = 4
	case info == 27:
		n = 8
	default:
		return 0, 0, errFrame
	}
	if r.off+n > len(r.b) {
		return 0, 0, errFrame
	}
	var buf [8]byte
	copy(buf[8-n:], r.b[r.off:r.off+n])
	r.off += n
	return major, binary.BigEndian.Uint64(buf[:]), nil
}

// int reads an integer.
func (r *cborScan) int() (int64, error) {
	major, v, err := r.head()
	switch {
	case err != nil:
		return 0, err
	case major == 0:
		return int64(v), nil
	case major == 1:
		return -1 - int64(v), nil
	}
	return 0, errFrame
}

// uint reads an unsigned integer.
func (r *cborScan) uint() (int64, error) {
	major, v, err := r.head()
	if err != nil || major != 0 {
		return 0, errFrame
	}
	return int64(v), nil
}

func (r *cborScan) text() (string, error) {
	major, n, err := r.head()
	if err != nil || major != 3 || n > uint64(len(r.b)-r.off) {
		return "", errFrame
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s, nil
}

// eachKey reads a map, calling fn with each key; fn must consume the value.
func (r *cborScan) eachKey(fn func(string) error) error {
	major, n, err := r.head()
	if err != nil || major != 5 || n > uint64(len(r.b)) {
		return errFrame
	}
	for range n {
		k, err := r.text()
		if err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
	}
	return nil
}

// skip passes over one value.
func (r *cborScan) skip(depth int) error {
	if depth > 64 {
		return errFrame
	}
	major, n, err := r.head()
	if err != nil {
		return err
	}
	switch major {
	case 0, 1, 7:
		return nil
	case 2, 3:
		if n > uint64(len(r.b)-r.off) {
			return errFrame
		}
		r.off += int(n)
		return nil
	case 4, 5:
		if n > uint64(len(r.b)) {
			return errFrame
		}
		items := n
		if major == 5 {
			items *= 2
		}
		for range items {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case 6:
		return r.skip(depth + 1)
	}
	return errFrame
}
