package ratelimit

// Binding returns the more binding of two decisions about one request (a
// refusal over an allowance, the later retry, the fewer points left), as
// the reference picks the headers of several limits charged together. A
// zero Decision (no limit applied) never binds.
func Binding(a, b Decision) Decision {
	switch {
	case a.Limit == 0 && a.Window == 0:
		return b
	case b.Limit == 0 && b.Window == 0:
		return a
	case better(b, a):
		return b
	}
	return a
}
