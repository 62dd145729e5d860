package main

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// TestSchemaCommand checks that `portico schema` prints the committed
// schema/portico.schema.json, a JSON Schema document.
func TestSchemaCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"schema"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	committed, err := os.ReadFile("../../schema/portico.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), committed) {
		t.Fatal("portico schema does not print schema/portico.schema.json")
	}
	var doc struct {
		Schema string `json:"$schema"`
		ID     string `json:"$id"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != "https://json-schema.org/draft/2020-12/schema" || doc.ID == "" {
		t.Fatalf("$schema %q, $id %q", doc.Schema, doc.ID)
	}
}
