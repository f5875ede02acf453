// Package all imports every built-in plugin: the one place to add a plugin
// to the edgepipe binary.
package all

import (
	_ "github.com/edgepipe/edgepipe/plugins/inputs/camera"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/modbus"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/opcua"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/s7"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/serial"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/synthetic"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/discard"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/file"
	_ "github.com/edgepipe/edgepipe/plugins/outputs/mqtt"
	_ "github.com/edgepipe/edgepipe/plugins/processors/alarm"
	_ "github.com/edgepipe/edgepipe/plugins/processors/deadband"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
)
