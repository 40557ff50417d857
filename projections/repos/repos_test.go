package repos_test

import (
	"testing"

	"github.com/pdslog/pdslog/projections"
	"github.com/pdslog/pdslog/projections/projectiontest"
	"github.com/pdslog/pdslog/projections/repos"
)

func TestConformance(t *testing.T) {
	projectiontest.Run(t, func(s *projections.Store) projections.Projection { return repos.New(s) }, nil)
}
