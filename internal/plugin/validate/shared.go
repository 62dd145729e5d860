package validate

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/portico-gw/portico/internal/plugin"
)

// compiled is a loaded document: the OpenAPI path table or the JSON
// Schema, and the files it was built from. Instances built from the same
// files (a global plugin on every route, the routes of one API, a reload
// that changed nothing) share one, through plugin.Context.Shared.
type compiled struct {
	api    *api
	schema *jsonschema.Schema
	sums   fileSums
}

// Close releases nothing: a compiled document is plain memory.
func (*compiled) Close() error { return nil }

// load reads and compiles the document of field (openapi or json_schema).
func load(field, file string) (*compiled, error) {
	c := &compiled{sums: fileSums{}}
	var err error
	if field == "openapi" {
		c.api, err = loadOpenAPI(file, c.sums)
	} else {
		c.schema, err = loadJSONSchema(file, c.sums)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// fresh reports whether every file c was built from still holds what was
// read.
func (c *compiled) fresh() bool {
	for file, sum := range c.sums {
		b, err := os.ReadFile(file)
		if err != nil || sha256.Sum256(b) != sum {
			return false
		}
	}
	return true
}

// acquire returns the compiled document of file, shared with the other
// instances built from the same, unchanged files; release is nil when the
// document is the instance's own.
func acquire(ctx plugin.Context, field, file string) (*compiled, func(), error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, nil, err
	}
	raw, err := os.ReadFile(abs)
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(raw)
	key := "request_validation\x00" + field + "\x00" + abs + "\x00" + hex.EncodeToString(sum[:])
	v, release, err := ctx.Shared(key, func() (io.Closer, error) { return load(field, abs) })
	if err != nil {
		return nil, nil, err
	}
	if c := v.(*compiled); c.fresh() {
		return c, release, nil
	}
	// A file the shared document references has changed since it was
	// built: this instance compiles its own.
	release()
	c, err := load(field, abs)
	return c, nil, err
}
