// Package server serves com.atproto.server.* and com.atproto.admin.* (one
// file per method): each parses its input, calls the write side (api/pds)
// or reads its projections, and renders the answer.
package server
