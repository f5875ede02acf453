package camera

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"testing"
	"time"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// testJPEG encodes a real w x h picture (a gradient, so it compresses like
// a scene rather than like noise).
func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// padJPEG grows a JPEG to size bytes with comment segments after SOI: it
// stays a picture image/jpeg decodes, as cameras' large EXIF blocks do.
func padJPEG(t testing.TB, j []byte, size int) []byte {
	t.Helper()
	out := append([]byte(nil), j[:2]...)
	for need := size - len(j); need > 0; {
		n := max(min(need-2, 65535), 2) // segment length includes its 2 length bytes
		seg := make([]byte, 4+n-2)
		seg[0], seg[1], seg[2], seg[3] = 0xFF, 0xFE, byte(n>>8), byte(n)
		for i := 4; i < len(seg); i++ {
			seg[i] = byte('a' + i%26)
		}
		out = append(out, seg...)
		need -= len(seg)
	}
	out = append(out, j[2:]...)
	if _, err := jpeg.DecodeConfig(bytes.NewReader(out)); err != nil {
		t.Fatalf("padded JPEG does not decode: %v", err)
	}
	return out
}

// startStream runs p's Stream until the test ends and hands over what it
// emits.
func startStream(t *testing.T, p sdk.Plugin) <-chan *sdk.Frame {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *sdk.Frame, 16)
	done := make(chan error, 1)
	go func() {
		done <- p.(sdk.StreamingInput).Stream(ctx, func(f *sdk.Frame) {
			select {
			case ch <- f:
			case <-ctx.Done():
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Stream: %v", err)
		}
	})
	return ch
}

// nextPicture waits for the next frame and checks it holds one picture of
// device that decodes as a JPEG.
func nextPicture(t *testing.T, ch <-chan *sdk.Frame, device string) sdk.Picture {
	t.Helper()
	select {
	case f := <-ch:
		if len(f.Pictures) != 1 || len(f.Batches) != 0 {
			t.Fatalf("frame: %d pictures, %d batches, want 1 picture only", len(f.Pictures), len(f.Batches))
		}
		pic := f.Pictures[0]
		if pic.Device != device || pic.Format != "jpeg" || pic.TS == 0 {
			t.Fatalf("picture device %q format %q ts %d", pic.Device, pic.Format, pic.TS)
		}
		if _, err := jpeg.DecodeConfig(bytes.NewReader(pic.Data)); err != nil {
			t.Fatalf("picture of %d bytes does not decode: %v", len(pic.Data), err)
		}
		return pic
	case <-time.After(15 * time.Second):
		t.Fatal("no picture within 15s")
	}
	return sdk.Picture{}
}

// noPicture checks nothing is pending on ch.
func noPicture(t *testing.T, ch <-chan *sdk.Frame) {
	t.Helper()
	select {
	case f := <-ch:
		t.Fatalf("unexpected frame with %d pictures", len(f.Pictures))
	default:
	}
}

// capture writes true to device.capture, as the server or an alarm does.
func capture(t *testing.T, p sdk.Plugin, device string) {
	t.Helper()
	res, err := p.(sdk.Writer).Write(context.Background(), []sdk.WriteRequest{{Device: device, Name: "capture", Value: sdk.Bool(true)}})
	if err != nil || len(res) != 1 || res[0].Error != "" {
		t.Fatalf("write capture: %v %+v", err, res)
	}
}

func health(t *testing.T, p sdk.Plugin) sdk.Health {
	t.Helper()
	h, err := p.(sdk.HealthReporter).Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// wantCounters checks the named counters (others are not looked at).
func wantCounters(t *testing.T, h sdk.Health, want map[string]uint64) {
	t.Helper()
	for k, v := range want {
		if h.Counters[k] != v {
			t.Errorf("counter %s = %d, want %d (all: %v)", k, h.Counters[k], v, h.Counters)
		}
	}
}
