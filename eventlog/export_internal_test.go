package eventlog

// EncodedSize is the stored size of ev (format byte included), for the
// external benchmarks that size their events. Test-only.
func EncodedSize(ev *Event) int {
	v, err := encodeValue(ev)
	if err != nil {
		panic(err)
	}
	return len(v)
}
