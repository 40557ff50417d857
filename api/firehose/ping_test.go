package firehose_test

import (
	"testing"
	"time"

	"github.com/pdslog/pdslog/api"
	"github.com/pdslog/pdslog/api/apitest"
	"github.com/pdslog/pdslog/api/firehose"
	"github.com/pdslog/pdslog/eventlog/eventlogtest"
)

// Pings keep an idle subscriber that answers them connected through many
// ping intervals; one that never reads (so never answers) is dropped with
// ping_timeout instead of holding its connection forever.
func TestIdlePings(t *testing.T) {
	env := apitest.New(t, func(o *api.Config) {
		o.Firehose.PingInterval = 50 * time.Millisecond
		o.Firehose.WriteTimeout = 300 * time.Millisecond
	})
	reg := env.API.Metrics().Registry
	live := subscribe(t, env, -1)
	dial(t, env, -1) // never read: pongs are only sent while reading
	deadline := time.Now().Add(30 * time.Second)
	for metric(t, reg, "pdslog_firehose_disconnects_total", firehose.ReasonPingTimeout) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("a subscriber that never answers pings was not dropped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Well past many ping intervals, the reading subscriber still gets
	// the next event.
	time.Sleep(10 * 50 * time.Millisecond)
	r := eventlogtest.NewRepo("did:plc:pingpingpingpingpingpingp")
	seq := appendEvents(t, env, r.Commit(eventlogtest.NewClock(), nil, 10))
	live.waitSeq(int64(seq))
	if n := metric(t, reg, "pdslog_firehose_disconnects_total", firehose.ReasonPingTimeout); n != 1 {
		t.Fatalf("%v ping timeouts, want only the silent subscriber's", n)
	}
}
