// Package api is pdslog's HTTP surface: XRPC over echo v4, one route table
// (routes.go) and one error renderer (package xrpc).
package api
