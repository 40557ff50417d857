package server

import (
	"github.com/pdslog/pdslog/projections/accounts"
)

// Handlers serves com.atproto.server.*.
type Handlers struct {
	Service  Service
	Accounts *accounts.Projection
}
