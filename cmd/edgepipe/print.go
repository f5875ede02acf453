package main

import (
	"io"

	"github.com/edgepipe/edgepipe/plugins/outputs/file"
	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// printMessage prints TOPIC<TAB>PAYLOAD, binary payloads as <N bytes>.
func printMessage(w io.Writer, m sdk.Message) { file.WriteLine(w, m) }
