package app

import (
	"net/http"

	"github.com/orderd/orderd/internal/events"
)

// httpHandler builds the HTTP API. (Wired to internal/httpapi.)
func (a *App) httpHandler(uc events.UseCases) http.Handler {
	_ = uc
	return http.NotFoundHandler()
}
