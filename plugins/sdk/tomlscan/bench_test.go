package tomlscan

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkScanLarge scans a 1000-point Modbus device table: scanning must
// stay linear in the size of the file (it once copied the rest of the
// input at every value).
func BenchmarkScanLarge(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("[[inputs.modbus]]\nurl = \"tcp://127.0.0.1:5020\"\n[[inputs.modbus.devices]]\nname = \"plc1\"\n")
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, "[[inputs.modbus.devices.points]]\nname = \"r%04d\"\narea = \"holding\"\naddress = %d\ntype = \"uint16\"\n", i, i)
	}
	doc := []byte(sb.String())
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		Scan(doc)
	}
}
