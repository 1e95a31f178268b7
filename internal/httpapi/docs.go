package httpapi

import (
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
)

// The routes outside API_V1_STR. DocsPath is where the interactive docs are
// served (outside production), with their assets below it.
const (
	HealthPath  = "/healthz"
	ReadyPath   = "/readyz"
	MetricsPath = "/metrics"
	DocsPath    = "/docs"
)

// FixedPaths are the routes outside API_V1_STR, which OPENAPI_URL must not
// take (config).
var FixedPaths = []string{HealthPath, ReadyPath, MetricsPath, DocsPath}

// docsFiles holds Swagger UI (from the swagger-ui-dist npm package, see
// docs/README.md) and our page around it, so /docs works offline.
//
//go:embed docs/index.html docs/assets/swagger-ui-bundle.js docs/assets/swagger-ui.css docs/assets/favicon-32x32.png docs/assets/docs.js docs/assets/LICENSE-swagger-ui.txt
var docsFiles embed.FS

var docsPage = template.Must(template.ParseFS(docsFiles, "docs/index.html"))

var docsAssets = func() fs.FS {
	sub, err := fs.Sub(docsFiles, "docs/assets")
	if err != nil {
		panic(err)
	}
	return sub
}()

// docsCSP lets the page load only what this server serves; Swagger UI's
// inline styles and data: images are the exceptions it needs.
var docsCSP = strings.Join([]string{
	"default-src 'none'",
	"script-src 'self'",
	"style-src 'self' 'unsafe-inline'",
	"img-src 'self' data:",
	"font-src 'self' data:",
	"connect-src 'self'",
	"base-uri 'none'",
	"form-action 'none'",
	"frame-ancestors 'none'",
}, "; ")

func (s *Server) serveDocsPage(w http.ResponseWriter, r *http.Request) {
	title := s.opts.AppName
	if title == "" {
		title = "API"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", docsCSP)
	w.Header().Set("Cache-Control", "no-cache")
	err := docsPage.Execute(w, struct{ Title, Assets, OpenAPIURL string }{
		Title: title + " — API docs", Assets: DocsPath + "/assets", OpenAPIURL: s.opts.OpenAPIURL,
	})
	if err != nil {
		logFrom(r.Context()).ErrorContext(r.Context(), "render docs page", "error", err)
	}
}

func serveDocsAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if _, err := fs.Stat(docsAssets, name); err != nil {
		writeProblem(w, newProblem(r.Context(), http.StatusNotFound, ReasonNoRoute, "no docs asset "+name))
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=86400")
	http.ServeFileFS(w, r, docsAssets, name)
}

// serveOpenAPI serves the OpenAPI 3.1 document generated from the operations.
func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	b, err := json.Marshal(s.api.OpenAPI())
	if err != nil {
		logFrom(r.Context()).ErrorContext(r.Context(), "marshal OpenAPI document", "error", err)
		writeProblem(w, newProblem(r.Context(), http.StatusInternalServerError, ReasonInternal, "could not render the OpenAPI document"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
