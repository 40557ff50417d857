//go:build !race

package s3_test

const memSize = 64 << 20
