package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pdslog/pdslog/api/pds/lexicon"
	"github.com/pdslog/pdslog/api/xrpc"
)

// Answers to an XRPC method called with the wrong HTTP method, as the
// reference's XRPC server gives them: 400 InvalidRequest naming the
// method expected (a query is GET, a procedure POST). HEAD of a query is
// left as it was (the catch-all: 501). 501 stays for methods nobody
// serves.

// otherMethods are the HTTP methods a route of method m answers with the
// wrong-method error.
func otherMethods(m string) []string {
	var out []string
	for _, o := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodHead} {
		if o != m && !(o == http.MethodHead && m == http.MethodGet) {
			out = append(out, o)
		}
	}
	return out
}

// wrongMethod is the answer to a call of a method expecting want.
func wrongMethod(want string) echo.HandlerFunc {
	return func(c echo.Context) error {
		return xrpc.InvalidRequest("Incorrect HTTP method (%s) expected %s", c.Request().Method, want)
	}
}

// routeMethods registers, beside XRPC route r, the wrong-method answer
// for every other HTTP method (but HEAD of a query), under the route's
// per-address limits as the reference's catch-all is.
func (s *Server) routeMethods(r route) {
	var mw []echo.MiddlewareFunc
	if rl := s.rateLimit(r); rl != nil {
		mw = append(mw, rl)
	}
	for _, m := range otherMethods(r.method) {
		s.e.Add(m, r.path, wrongMethod(r.method), mw...)
	}
}

// checkMethod is the catch-all's wrong-method check for the methods the
// lexicons define but no route serves here (proxied ones).
func (s *Server) checkMethod(next echo.HandlerFunc) echo.HandlerFunc {
	lex, _ := lexicon.New()
	return func(c echo.Context) error {
		if lex == nil {
			return next(c)
		}
		want := ""
		switch lex.MethodKind(c.Param("nsid")) {
		case lexicon.KindQuery, lexicon.KindSubscription:
			want = http.MethodGet
		case lexicon.KindProcedure:
			want = http.MethodPost
		}
		m := c.Request().Method
		if want != "" && m != want && !(m == http.MethodHead && want == http.MethodGet) {
			return wrongMethod(want)(c)
		}
		return next(c)
	}
}

// adminRefusal gives a refusal of admin credentials the reference's name:
// its adminToken verifier throws AuthRequiredError(), which is
// AuthenticationRequired. Other refusals (too many attempts) pass as
// they are.
func adminRefusal(err error) error {
	if xe, ok := err.(*xrpc.Error); ok && xe.Status == http.StatusUnauthorized {
		return &xrpc.Error{Status: http.StatusUnauthorized, Name: "AuthenticationRequired", Message: "Authentication Required"}
	}
	return err
}
