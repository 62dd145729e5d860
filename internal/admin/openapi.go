package admin

import _ "embed"

// openAPI is the OpenAPI 3 description of the admin API, served at
// /openapi.json.
//
//go:embed openapi.json
var openAPI []byte
