package agent

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgepipe/edgepipe/core/config"
	_ "github.com/edgepipe/edgepipe/plugins/inputs/camera"
	_ "github.com/edgepipe/edgepipe/plugins/processors/alarm"
	_ "github.com/edgepipe/edgepipe/plugins/processors/template"
)

// The SPEC's chain from a reading to a picture: a point crosses an alarm
// threshold, the alarm processor raises it naming a camera, the core asks
// that camera for a picture, and the template renders both the alarm and
// the picture. All real plugins, in-process and isolated.
func TestAlarmRaisesAndTakesAPicture(t *testing.T) {
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, image.NewGray(image.Rect(0, 0, 32, 24)), nil); err != nil {
		t.Fatal(err)
	}
	cam := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "image/jpeg")
		w.Write(jpg.Bytes())
	}))
	defer cam.Close()
	for _, iso := range []bool{false, true} {
		t.Run(fmt.Sprint("isolated=", iso), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.txt")
			doc := fmt.Sprintf(`[agent]
device_id = "GW-T"
data_dir = %q
[[inputs.synthetic]]
device = "boiler"
points = 1
pattern = "constant"
interval = "50ms"
[[inputs.camera]]
device = "cam1"
source = "http"
url = %q
interval = "0s"
[[processors.alarm]]
[[processors.alarm.rules]]
name = "always"
point = "boiler.p0"
condition = "value >= 0"
level = "critical"
message = "boiler at ${value}"
camera = "cam1"
[[outputs.file]]
path = %q
buffer = "memory"
`, t.TempDir(), cam.URL+"/snapshot.jpg", out)
			cfg, err := config.Parse("alarm.toml", []byte(doc), os.LookupEnv)
			if err != nil {
				t.Fatal(err)
			}
			a := New(cfg, Options{Isolation: func(*config.Plugin) bool { return iso }})
			if err := a.Open(context.Background(), true); err != nil {
				t.Fatal(err)
			}
			a.Start()
			defer a.Stop(context.Background())
			waitFor(t, "the alarm and the picture", func() bool {
				b, _ := os.ReadFile(out)
				s := string(b)
				return strings.Contains(s, "Topic/flexem/fbox/GW-T/alarm\t") &&
					strings.Contains(s, `"state":"raised"`) && strings.Contains(s, `"message":"boiler at 0"`) &&
					strings.Contains(s, "Topic/flexem/fbox/GW-T/image/cam1\t") &&
					strings.Contains(s, fmt.Sprintf(`"size":%d`, jpg.Len()))
			})
			b, _ := os.ReadFile(out)
			if n := strings.Count(string(b), `"state":"raised"`); n != 1 {
				t.Fatalf("alarm raised %d times:\n%s", n, b)
			}
		})
	}
}
