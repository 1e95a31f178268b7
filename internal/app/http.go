package app

import (
	"net/http"

	"github.com/orderd/orderd/internal/events"
)

// httpHandler builds the HTTP API. (Wired to internal/httpapi.)
func (a *App) httpHandler(uc events.UseCases) http.Handler {
	_ = uc
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"status":"ok"}`)) })
	return mux
}
