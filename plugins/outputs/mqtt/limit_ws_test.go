package mqtt

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"github.com/gorilla/websocket"
)

// max_command_size holds over WebSocket too: a server's 1 MiB PUBLISH on a
// ws:// or wss:// connection reaches paho as the small cut packet, not
// whole, and the packet after it arrives intact.
func TestWebSocketConnectionIsLimited(t *testing.T) {
	huge := []byte(`{"id":"huge-ws","points":{"a":"` + strings.Repeat("x", 1<<20) + `"}}`)
	upgrader := websocket.Upgrader{Subprotocols: []string{"mqtt"}}
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for _, p := range [][]byte{huge, []byte("after")} {
			pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
			pub.TopicName, pub.Qos, pub.MessageID, pub.Payload = "t/ws", 1, 9, p
			w, err := ws.NextWriter(websocket.BinaryMessage)
			if err != nil {
				return
			}
			if err := pub.Write(w); err != nil {
				return
			}
			if err := w.Close(); err != nil {
				return
			}
		}
		// Hold the connection until the client has read.
		_, _, _ = ws.ReadMessage()
	})
	for _, tc := range []struct {
		scheme string
		server func(http.Handler) *httptest.Server
	}{{"ws", httptest.NewServer}, {"wss", httptest.NewTLSServer}} {
		t.Run(tc.scheme, func(t *testing.T) {
			srv := tc.server(handler)
			defer srv.Close()
			u, err := url.Parse(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			u.Scheme, u.Path = tc.scheme, "/mqtt"
			opts := paho.NewClientOptions()
			if tc.scheme == "wss" {
				opts.SetTLSConfig(&tls.Config{RootCAs: srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs})
			}
			var opened net.Conn
			c, err := openConn(10*time.Second, 64<<10, func(c net.Conn) { opened = c }, newPayloadRefs())(u, *opts)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if opened == nil {
				t.Fatal("the connection was not handed to the output to cut")
			}
			counted := &countingReader{r: c}
			p, err := packets.ReadPacket(counted)
			if err != nil {
				t.Fatal(err)
			}
			pub := p.(*packets.PublishPacket)
			head, size, cut := cutPayload(pub.Payload)
			if !cut || size != len(huge) || pub.MessageID != 9 || !strings.HasPrefix(string(huge), string(head)) {
				t.Fatalf("the 1 MiB publish reached paho uncut: cut %v size %d id %d, %d bytes read", cut, size, pub.MessageID, counted.n)
			}
			if counted.n > 2<<10 {
				t.Fatalf("paho read %d bytes for the cut publish", counted.n)
			}
			p, err = packets.ReadPacket(c)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(p.(*packets.PublishPacket).Payload); got != "after" {
				t.Fatalf("publish after the cut one: %q", got)
			}
		})
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}
