package camera

import (
	"context"
	"net/url"
	"testing"
	"time"
)

// BenchmarkHTTPCapture takes pictures from the digest-protected test
// camera over loopback: captures/s and MB/s of the whole path (request,
// digest answer, size-limited read, JPEG check), typical 640x480 pictures
// and large ones.
func BenchmarkHTTPCapture(b *testing.B) {
	for _, c := range []struct {
		name string
		size int
	}{{"50kB", 50_000}, {"1MiB", 1 << 20}, {"5MiB", 5 << 20}} {
		size := c.size
		b.Run(c.name, func(b *testing.B) {
			pic := padJPEG(b, testJPEG(b, 64, 48), size)
			s := newCamServer(b, "digest", pic)
			u, _ := url.Parse(s.srv.URL + "/ISAPI/Streaming/channels/101/picture")
			src := newHTTPSource(u, s.user, s.pass, nil, 10*time.Second, 8<<20)
			defer src.close()
			b.SetBytes(int64(len(pic)))
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if _, err := src.capture(context.Background()); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "captures/s")
		})
	}
}
