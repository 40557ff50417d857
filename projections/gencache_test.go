package projections_test

import (
	"testing"

	"github.com/pdslog/pdslog/projections"
)

func TestGenCache(t *testing.T) {
	var c projections.GenCache[string, int]
	if _, ok := c.Get("a"); ok {
		t.Fatal("an empty cache had an entry")
	}
	g := c.Gen()
	c.Put("a", g, 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get after Put = %d, %v; want 1, true", v, ok)
	}
	c.Invalidate()
	if _, ok := c.Get("a"); ok {
		t.Fatal("an entry outlived its generation")
	}

	// A reader that read the store in generation g while a batch committed
	// (Invalidate) puts a stale entry: it must not be served.
	g = c.Gen()
	c.Invalidate()
	c.Put("b", g, 2)
	if _, ok := c.Get("b"); ok {
		t.Fatal("an entry stamped with an earlier generation was served")
	}
	c.Put("b", c.Gen(), 3)
	if v, ok := c.Get("b"); !ok || v != 3 {
		t.Fatalf("Get = %d, %v; want 3, true", v, ok)
	}
}

func TestGenCacheBound(t *testing.T) {
	c := projections.GenCache[int, int]{Max: 3}
	for i := range 3 {
		c.Put(i, c.Gen(), i)
	}
	for i := range 3 {
		if _, ok := c.Get(i); !ok {
			t.Fatalf("entry %d gone below the bound", i)
		}
	}
	c.Put(3, c.Gen(), 3) // past Max: the cache starts over with it
	if _, ok := c.Get(0); ok {
		t.Fatal("the cache grew past Max")
	}
	if v, ok := c.Get(3); !ok || v != 3 {
		t.Fatalf("Get(3) = %d, %v after starting over", v, ok)
	}
}
