package config

import _ "embed"

//go:embed example.yaml
var example []byte

// Example returns a complete, commented haconf.yaml for a two-node pair.
func Example() []byte { return append([]byte(nil), example...) }
