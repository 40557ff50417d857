package api

// Route is a route table entry as tests see it.
type Route struct {
	Method, Path, Policy string
	// OAuth names what an OAuth token must allow ("" where no XRPC
	// credentials are taken).
	OAuth string
}

// RouteTable returns the server's route table.
func (s *Server) RouteTable() []Route {
	var out []Route
	for _, r := range s.routes() {
		out = append(out, Route{Method: r.method, Path: r.path, Policy: r.auth.String(), OAuth: r.oauthRule().name})
	}
	return out
}
