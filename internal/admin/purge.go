package admin

import (
	"errors"
	"net/http"

	"go.yaml.in/yaml/v3"

	"github.com/portico-gw/portico/internal/config"
)

// maxPurgeBody bounds the body of POST /cache/purge.
const maxPurgeBody = 64 << 10

// postCachePurge serves POST /cache/purge: the body names what to remove
// from the running caches, exactly one of {"url": "https://host/path?q"},
// {"prefix": "host/path"}, {"tag": "product-42"} or {"all": true}, and
// optionally "route" (default: every route with a cache). It answers 200
// {"purged": N, "routes": [...]}; 400 for a bad body, naming the field, or
// a route without a cache; 404 for an unknown route. A purge is no config
// change: it needs no If-Match and makes no revision.
func postCachePurge(w http.ResponseWriter, r *http.Request, m Manager, _ *config.Config) {
	r.Body = http.MaxBytesReader(w, r.Body, maxPurgeBody)
	p, err := purgeBody(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if pe := p.Check(); pe != nil {
		writeError(w, purgeProblem(pe))
		return
	}
	res, err := m.PurgeCache(r.Context(), p)
	if pe, ok := errors.AsType[*PurgeError](err); ok {
		if pe.NotFound {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": pe.Msg})
			return
		}
		writeError(w, purgeProblem(pe))
		return
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]any{"error": "purge failed: " + err.Error(), "purged": res.Purged, "routes": res.Routes})
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// purgeProblem is the 400 for a purge the body cannot make, located at
// its field.
func purgeProblem(pe *PurgeError) error {
	ptr := ""
	if pe.Field != "" {
		ptr = "/" + pe.Field
	}
	return bodyError(ptr, "%s", pe.Msg)
}

// purgeBody decodes the purge request: a JSON object whose keys are url,
// prefix, tag and route (strings) and all (a boolean).
func purgeBody(r *http.Request) (CachePurge, error) {
	var p CachePurge
	body, err := readBody(r, yaml.MappingNode)
	if err != nil {
		return p, err
	}
	for i := 0; i+1 < len(body.Content); i += 2 {
		k, v := body.Content[i].Value, body.Content[i+1]
		ptr := "/" + escapePointerToken(k)
		var dst *string
		switch k {
		case "url":
			dst = &p.URL
		case "prefix":
			dst = &p.Prefix
		case "tag":
			dst = &p.Tag
		case "route":
			dst = &p.Route
		case "all":
			if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
				return p, bodyError(ptr, "must be true or false")
			}
			p.All = v.Value == "true"
			continue
		default:
			return p, bodyError(ptr, "unknown field; the fields are url, prefix, tag, all and route")
		}
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
			return p, bodyError(ptr, "must be a string")
		}
		if v.Value == "" {
			return p, bodyError(ptr, "must not be empty")
		}
		*dst = v.Value
	}
	return p, nil
}
