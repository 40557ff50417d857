package car_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/pdslog/pdslog/mst/car"
)

func block(t *testing.T, codec uint64, data string) car.Block {
	t.Helper()
	c, err := cid.V1Builder{Codec: codec, MhType: multihash.SHA2_256}.Sum([]byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return car.Block{CID: c, Data: []byte(data)}
}

// TestFindAndEachBlock reads CARs that mst/car writes: every block comes
// back with its CID and data, in order, as car.Unmarshal returns them.
func TestFindAndEachBlock(t *testing.T) {
	var blocks []car.Block
	for i := range 20 {
		codec := uint64(cid.DagCBOR)
		if i%3 == 0 {
			codec = cid.Raw
		}
		blocks = append(blocks, block(t, codec, fmt.Sprintf("block %d %s", i, bytes.Repeat([]byte{'x'}, i*40))))
	}
	slice, err := car.Marshal([]cid.Cid{blocks[0].CID}, blocks...)
	if err != nil {
		t.Fatal(err)
	}
	_, want, err := car.Unmarshal(slice, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []car.Block
	err = car.EachBlock(slice, func(c, data []byte) error {
		_, parsed, err := cid.CidFromBytes(c)
		if err != nil {
			return err
		}
		got = append(got, car.Block{CID: parsed, Data: append([]byte{}, data...)})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("EachBlock: %d blocks, car.Unmarshal %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].CID.Equals(want[i].CID) || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("block %d: got %s %q, want %s %q", i, got[i].CID, got[i].Data, want[i].CID, want[i].Data)
		}
	}
	for _, b := range blocks {
		data, ok, err := car.FindBlock(slice, b.CID)
		if err != nil || !ok || !bytes.Equal(data, b.Data) {
			t.Fatalf("FindBlock %s: %q %v %v, want %q", b.CID, data, ok, err, b.Data)
		}
	}
	missing := block(t, cid.DagCBOR, "not in the CAR")
	if _, ok, err := car.FindBlock(slice, missing.CID); ok || err != nil {
		t.Fatalf("FindBlock of a missing block: ok %v err %v", ok, err)
	}
}

// TestEachBlockRefuses checks what car.Unmarshal refuses is refused: a
// block that does not hash to its CID, a CID outside the atproto profile,
// and truncated input.
func TestEachBlockRefuses(t *testing.T) {
	good := block(t, cid.DagCBOR, "some record bytes")
	slice, err := car.Marshal([]cid.Cid{good.CID}, good)
	if err != nil {
		t.Fatal(err)
	}
	nop := func(c, data []byte) error { return nil }
	tampered := append([]byte{}, slice...)
	tampered[len(tampered)-1] ^= 1
	if err := car.EachBlock(tampered, nop); err == nil {
		t.Fatal("EachBlock accepted a block that does not hash to its CID")
	}
	if _, _, err := car.Unmarshal(tampered, nil); err == nil {
		t.Fatal("oracle: car.Unmarshal accepted the tampered block")
	}
	hl, w := binary.Uvarint(slice)
	for n := 1; n < len(slice); n++ {
		if n == w+int(hl) {
			continue // the header alone: a CAR without blocks
		}
		if err := car.EachBlock(slice[:n], nop); err == nil {
			t.Fatalf("EachBlock accepted the CAR truncated to %d of %d bytes", n, len(slice))
		}
	}
	sha512, err := cid.V1Builder{Codec: cid.DagCBOR, MhType: multihash.SHA2_512}.Sum([]byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	other, err := car.Marshal([]cid.Cid{good.CID}, good, car.Block{CID: sha512, Data: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	if err := car.EachBlock(other, nop); err == nil {
		t.Fatal("EachBlock accepted a sha2-512 CID")
	}
	stop := errors.New("stop")
	if err := car.EachBlock(slice, func(c, data []byte) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: got %v", err)
	}
}
