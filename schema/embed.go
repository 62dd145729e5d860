// Package schema ships the JSON Schema of Portico's config file,
// portico.schema.json, generated from the config types by
// `go generate ./internal/schema` and embedded for `portico schema`.
package schema

import _ "embed"

// JSON is portico.schema.json.
//
//go:embed portico.schema.json
var JSON []byte
