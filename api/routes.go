package api

// routes is the route table: every endpoint the server answers.
func (s *Server) routes() {
	s.e.GET("/xrpc/_health", s.health)
	s.e.GET("/ready", s.ready)
	s.e.Any("/xrpc/:nsid", s.notImplemented)
}
