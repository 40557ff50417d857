package api

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
)

// A body read to its end in time ends its read deadline: a handler that
// works on past it keeps a live request context (net/http reads the
// connection in the background once the body is done, and a deadline
// passing there would cancel the request).
func TestBodyDeadlineEndsWithTheBody(t *testing.T) {
	const timeout = 200 * time.Millisecond
	s := &Server{cfg: Config{BodyTimeout: timeout}, net: NewNetMetrics()}
	e := echo.New()
	e.POST("/slow", func(c echo.Context) error {
		b, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		time.Sleep(3 * timeout)
		if err := c.Request().Context().Err(); err != nil {
			return c.String(http.StatusInternalServerError, "request context ended: "+err.Error())
		}
		return c.String(http.StatusOK, string(b))
	}, s.limitBody(jsonBody, 1<<10))
	srv := httptest.NewServer(e)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/slow", "application/json", strings.NewReader(`{"ok":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != `{"ok":true}` {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}
