package api

import (
	"embed"
	"io/fs"
	"mime"
	"net/http"
	"path"
)

// The web page: plain HTML, CSS and JavaScript embedded in the binary (no
// build step, no CDN). It is public (it holds no data); everything it shows
// comes from the authenticated API.
//
//go:embed web/*
var webFS embed.FS

// contentSecurityPolicy allows only this origin's own scripts and styles:
// no inline script, so an anomaly text that slipped into the DOM as HTML
// still could not run.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

func (s *Server) handleWeb(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	if name == "" {
		name = "index.html"
	}
	b, err := fs.ReadFile(webFS, "web/"+path.Base(name))
	if err != nil {
		writeProblem(w, r, problem{Type: typeNotFound, Status: http.StatusNotFound, Detail: "no such file: " + name})
		return
	}
	h := w.Header()
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
