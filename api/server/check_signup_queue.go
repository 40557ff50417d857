package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// CheckSignupQueue serves com.atproto.temp.checkSignupQueue: there is no
// signup queue here, so every account is activated, as the reference
// answers without an entryway.
func (h *Handlers) CheckSignupQueue(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]bool{"activated": true})
}
