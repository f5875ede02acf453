package file

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgepipe/edgepipe/plugins/sdk"
	"github.com/edgepipe/edgepipe/plugins/sdk/sdktest"
)

func TestWritesLinesBothWays(t *testing.T) {
	sdktest.Run(t, func() sdk.Plugin { return &File{} }, func(t *testing.T, p sdk.Plugin) {
		path := filepath.Join(t.TempDir(), "out.txt")
		sdktest.Init(t, p, "path = \""+path+"\"\n")
		err := p.(sdk.Output).Publish(context.Background(), []sdk.Message{
			{Topic: "a/data", Payload: []byte(`{"v":1}`)},
			{Topic: "a/image/cam1", Payload: []byte{0xFF, 0xD8, 0x00, 0xFF}},
		})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		if got := string(b); got != "a/data\t{\"v\":1}\na/image/cam1\t<4 bytes>\n" {
			t.Fatalf("file holds %q", got)
		}
	})
}

func TestUnwritablePathIsAnInitError(t *testing.T) {
	_, err := (&File{}).Init(context.Background(), sdktest.Request("path = \"/nonexistent/dir/out.txt\"\n"))
	if err == nil {
		t.Fatal("want an error")
	}
}

func TestIsText(t *testing.T) {
	for in, want := range map[string]bool{"{\"a\":\"é\"}\n": true, "\x00": false, "\xff": false, "\x7f": false} {
		if IsText([]byte(in)) != want {
			t.Errorf("IsText(%q) != %v", in, want)
		}
	}
}
