package api

import (
	"bytes"
	_ "embed"
)

// openAPIDocument is the OpenAPI 3.0 description of the API, written by
// hand and checked against the route table by the tests.
//
//go:embed openapi.json
var openAPIDocument []byte

// OpenAPI returns a copy of the OpenAPI 3.0 document served at
// /v1/openapi.json.
func OpenAPI() []byte { return bytes.Clone(openAPIDocument) }
