package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

const ip1, ip2 = "192.0.2.1", "198.51.100.7"

func TestLoginAttemptLimits(t *testing.T) {
	lt := NewLoginThrottle(LoginConfig{})
	// 30 per 5 minutes per identifier+IP, whatever the outcomes
	for i := 0; i < 30; i++ {
		d := lt.Allow("alice.example.com", ip1, t0)
		if !d.OK {
			t.Fatalf("attempt %d refused: %+v", i, d)
		}
		lt.Succeed("alice.example.com", ip1, t0)
	}
	d := lt.Allow("alice.example.com", ip1, t0.Add(time.Minute))
	if d.OK || d.Limit != 30 || d.Window != 5*time.Minute || d.RetryAfter != 4*time.Minute {
		t.Fatalf("31st attempt: %+v", d)
	}
	// another IP, or another identifier, has its own budget
	if !lt.Allow("alice.example.com", ip2, t0).OK || !lt.Allow("bob.example.com", ip1, t0).OK {
		t.Fatal("independent keys refused")
	}
	// the identifier is normalised: case and spaces do not buy attempts
	if lt.Allow(" Alice.Example.COM ", ip1, t0.Add(time.Minute)).OK {
		t.Fatal("case variant bypassed the limit")
	}
	// 300 per day: 10 windows of 30
	for w := 1; w < 10; w++ {
		at := t0.Add(time.Duration(w) * 5 * time.Minute)
		for i := 0; i < 30; i++ {
			if d := lt.Allow("alice.example.com", ip1, at); !d.OK {
				t.Fatalf("window %d attempt %d: %+v", w, i, d)
			}
			lt.Succeed("alice.example.com", ip1, at)
		}
	}
	d = lt.Allow("alice.example.com", ip1, t0.Add(50*time.Minute))
	if d.OK || d.Limit != 300 || d.RetryAfter != 24*time.Hour-50*time.Minute {
		t.Fatalf("301st attempt of the day: %+v", d)
	}
}

func TestLoginLockout(t *testing.T) {
	lt := NewLoginThrottle(LoginConfig{})
	id := "alice.example.com"
	at := t0
	for i := 1; i <= 4; i++ {
		if !lt.Allow(id, ip1, at).OK {
			t.Fatalf("attempt %d refused", i)
		}
		d := lt.Fail(id, ip1, at)
		if !d.OK || d.Remaining != 5-i {
			t.Fatalf("failure %d: %+v", i, d)
		}
		at = at.Add(10 * time.Second)
	}
	lt.Allow(id, ip1, at)
	lockedAt := at
	d := lt.Fail(id, ip1, at)
	if d.OK || d.RetryAfter != 15*time.Minute || !d.Reset.Equal(lockedAt.Add(15*time.Minute)) {
		t.Fatalf("5th failure did not lock: %+v", d)
	}
	// locked from this IP only, for 15 minutes, without charging attempts
	d = lt.Allow(id, ip1, lockedAt.Add(14*time.Minute))
	if d.OK || d.RetryAfter != time.Minute || d.Limit != 5 || d.Remaining != 0 || d.Window != 15*time.Minute {
		t.Fatalf("during lockout: %+v", d)
	}
	if !lt.Allow(id, ip2, lockedAt).OK {
		t.Fatal("other IP locked too")
	}
	lt.Release(id, ip2, lockedAt)
	d = lt.Allow(id, ip1, lockedAt.Add(15*time.Minute))
	if !d.OK {
		t.Fatalf("after lockout: %+v", d)
	}
	// the count restarted: 4 more failures are not a lockout, the 5th is
	lt.Fail(id, ip1, lockedAt.Add(15*time.Minute))
	at = lockedAt.Add(16 * time.Minute)
	for i := 2; i <= 5; i++ {
		if !lt.Allow(id, ip1, at).OK {
			t.Fatalf("attempt %d after lockout refused", i)
		}
		d = lt.Fail(id, ip1, at)
	}
	if d.OK {
		t.Fatalf("second lockout missing: %+v", d)
	}
}

func TestLoginSuccessResets(t *testing.T) {
	lt := NewLoginThrottle(LoginConfig{})
	id := "alice.example.com"
	for round := 0; round < 3; round++ {
		for i := 0; i < 4; i++ {
			if !lt.Allow(id, ip1, t0).OK {
				t.Fatalf("round %d attempt %d refused", round, i)
			}
			lt.Fail(id, ip1, t0)
		}
		if !lt.Allow(id, ip1, t0).OK {
			t.Fatal("refused before the 5th failure")
		}
		lt.Succeed(id, ip1, t0)
	}
	// Succeed also lifts a lockout (say, after a password reset)
	for i := 0; i < 5; i++ {
		lt.Allow(id, ip2, t0)
		lt.Fail(id, ip2, t0)
	}
	if lt.Allow(id, ip2, t0).OK {
		t.Fatal("not locked")
	}
	lt.Succeed(id, ip2, t0)
	if !lt.Allow(id, ip2, t0).OK {
		t.Fatal("success did not lift the lockout")
	}
}

func TestLoginFailureMemory(t *testing.T) {
	lt := NewLoginThrottle(LoginConfig{})
	id := "alice.example.com"
	for i := 0; i < 4; i++ {
		lt.Allow(id, ip1, t0)
		lt.Fail(id, ip1, t0)
	}
	// an hour after the last failure the streak is forgotten
	later := t0.Add(time.Hour)
	lt.Allow(id, ip1, later)
	if d := lt.Fail(id, ip1, later); !d.OK || d.Remaining != 4 {
		t.Fatalf("streak remembered: %+v", d)
	}
}

// TestLoginPending: attempts in flight count towards the lockout, so that
// concurrent guesses cannot outrun it; unreported ones expire.
func TestLoginPending(t *testing.T) {
	lt := NewLoginThrottle(LoginConfig{})
	id := "alice.example.com"
	for i := 0; i < 5; i++ {
		if !lt.Allow(id, ip1, t0).OK {
			t.Fatalf("attempt %d refused", i)
		}
	}
	d := lt.Allow(id, ip1, t0.Add(10*time.Second))
	if d.OK || d.RetryAfter != time.Second {
		t.Fatalf("6th concurrent attempt: %+v", d)
	}
	// one reported as neither failure nor success frees a slot
	lt.Release(id, ip1, t0.Add(10*time.Second))
	if !lt.Allow(id, ip1, t0.Add(10*time.Second)).OK {
		t.Fatal("released slot not reusable")
	}
	// ... and still refused a little later, until the unreported attempts
	// expire after PendingTimeout
	if lt.Allow(id, ip1, t0.Add(59*time.Second)).OK {
		t.Fatal("pending attempts expired early")
	}
	if !lt.Allow(id, ip1, t0.Add(10*time.Second+time.Minute)).OK {
		t.Fatal("pending attempts did not expire")
	}

	// concurrently: of 50 simultaneous guesses that all fail, at most
	// MaxFailures get through
	lt = NewLoginThrottle(LoginConfig{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := 0; g < 50; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if lt.Allow(id, ip1, t0).OK {
				mu.Lock()
				allowed++
				mu.Unlock()
				lt.Fail(id, ip1, t0)
			}
		}()
	}
	wg.Wait()
	if allowed > 5 {
		t.Fatalf("%d guesses allowed", allowed)
	}
	if lt.Allow(id, ip1, t0).OK {
		t.Fatal("not locked after the burst")
	}
}

func TestLoginBounded(t *testing.T) {
	lt := NewLoginThrottle(LoginConfig{MaxKeys: 50})
	for i := 0; i < 500; i++ {
		id := fmt.Sprint("user", i)
		lt.Allow(id, ip1, t0)
		lt.Fail(id, ip1, t0)
	}
	lt.mu.Lock()
	n := lt.streaks.len()
	lt.mu.Unlock()
	if n > 50 || lt.limiter.Len() > 2*50 {
		t.Fatalf("%d streaks, %d windows", n, lt.limiter.Len())
	}
}

func TestLoginKey(t *testing.T) {
	// no identifier can collide with another (identifier, ip) pair
	if loginKey("a|b", "c") == loginKey("a", "b|c") {
		t.Fatal("key collision")
	}
	if loginKey("Alice", ip1) != loginKey(" alice ", ip1) {
		t.Fatal("not normalised")
	}
}
