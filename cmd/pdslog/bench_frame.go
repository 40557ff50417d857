package main

import (
	"encoding/binary"
	"errors"
)

// benchFrame is what the bench's firehose subscribers need from a
// subscribeRepos frame: its type, seq, time and repo. The frame's blocks
// are skipped, never decoded, so many subscribers stay cheap.
type benchFrame struct {
	op   int64
	typ  string
	seq  int64
	time string
	repo string // "repo" of #commit/#sync, "did" of #identity/#account
}

var errBenchFrame = errors.New("bench: malformed firehose frame")

// parseBenchFrame reads the DAG-CBOR header and body maps of a frame.
func parseBenchFrame(b []byte) (benchFrame, error) {
	var f benchFrame
	r := cborScan{b: b}
	if err := r.eachKey(func(k string) error {
		switch k {
		case "op":
			major, v, err := r.head()
			if err != nil {
				return err
			}
			switch major {
			case 0:
				f.op = int64(v)
			case 1:
				f.op = -1 - int64(v)
			default:
				return errBenchFrame
			}
			return nil
		case "t":
			s, err := r.text()
			f.typ = s
			return err
		}
		return r.skip(0)
	}); err != nil {
		return f, err
	}
	if f.op != 1 {
		return f, nil
	}
	err := r.eachKey(func(k string) error {
		switch k {
		case "seq":
			major, v, err := r.head()
			if err != nil || major != 0 {
				return errBenchFrame
			}
			f.seq = int64(v)
			return nil
		case "time":
			s, err := r.text()
			f.time = s
			return err
		case "repo", "did":
			s, err := r.text()
			f.repo = s
			return err
		}
		return r.skip(0)
	})
	return f, err
}

// cborScan walks DAG-CBOR (definite lengths only) without building values.
type cborScan struct {
	b   []byte
	off int
}

func (r *cborScan) head() (major byte, arg uint64, err error) {
	if r.off >= len(r.b) {
		return 0, 0, errBenchFrame
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
		return 0, 0, errBenchFrame
	}
	if r.off+n > len(r.b) {
		return 0, 0, errBenchFrame
	}
	var buf [8]byte
	copy(buf[8-n:], r.b[r.off:r.off+n])
	r.off += n
	return major, binary.BigEndian.Uint64(buf[:]), nil
}

func (r *cborScan) text() (string, error) {
	major, n, err := r.head()
	if err != nil || major != 3 || n > uint64(len(r.b)-r.off) {
		return "", errBenchFrame
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s, nil
}

// eachKey reads a map, calling fn with each key; fn must consume the value.
func (r *cborScan) eachKey(fn func(string) error) error {
	major, n, err := r.head()
	if err != nil || major != 5 || n > uint64(len(r.b)) {
		return errBenchFrame
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
		return errBenchFrame
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
			return errBenchFrame
		}
		r.off += int(n)
		return nil
	case 4, 5:
		if n > uint64(len(r.b)) {
			return errBenchFrame
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
	return errBenchFrame
}
