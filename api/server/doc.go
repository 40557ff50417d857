// Package server serves com.atproto.server.* (one file per method) and
// holds the description of this PDS (Service).
package server
