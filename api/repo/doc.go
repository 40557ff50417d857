// Package repo serves com.atproto.repo.*: one file per method, and the
// write path (Writer) every record write goes through.
package repo
