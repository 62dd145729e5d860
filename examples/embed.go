// Package examples ships Portico's example configs; the quick-start config is
// embedded in the binary so `portico run` works with nothing else present.
package examples

import _ "embed"

// Quickstart is examples/quickstart.yaml.
//
//go:embed quickstart.yaml
var Quickstart []byte
