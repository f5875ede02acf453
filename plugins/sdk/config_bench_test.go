package sdk_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

// BenchmarkDecodeConfigLarge decodes a 1000-point table, clean and with
// ten wrong-typed values: each bad value costs one more decode of the
// table (to report them all in one run), which check can afford.
func BenchmarkDecodeConfigLarge(b *testing.B) {
	type point struct {
		Name    string `toml:"name"`
		Area    string `toml:"area"`
		Address int    `toml:"address"`
		Type    string `toml:"type"`
	}
	for _, bad := range []int{0, 10} {
		var sb strings.Builder
		for i := 0; i < 1000; i++ {
			addr := fmt.Sprint(i)
			if i%100 == 0 && i/100 < bad {
				addr = `"x"`
			}
			fmt.Fprintf(&sb, "[[points]]\nname = \"r%04d\"\narea = \"holding\"\naddress = %s\ntype = \"uint16\"\n", i, addr)
		}
		req := sdktest.Request(sb.String())
		b.Run(fmt.Sprintf("bad=%d", bad), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var cfg struct {
					Points []point `toml:"points"`
				}
				_, err := sdk.DecodeConfig(req, &cfg)
				if n := len(sdk.AsConfigErrors(err)); n != bad {
					b.Fatalf("%d errors, want %d", n, bad)
				}
			}
		})
	}
}
