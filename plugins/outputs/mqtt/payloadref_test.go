package mqtt

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// pahoPublish is the packet paho writes for a PUBLISH.
func pahoPublish(t testing.TB, topic string, qos byte, id uint16, payload []byte) []byte {
	t.Helper()
	pub := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	pub.TopicName, pub.Qos, pub.MessageID, pub.Payload = topic, qos, id, payload
	var b bytes.Buffer
	if err := pub.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// captureConn records what is written to it.
type captureConn struct {
	net.Conn
	got [][]byte
}

func (c *captureConn) Write(p []byte) (int, error) {
	c.got = append(c.got, bytes.Clone(p))
	return len(p), nil
}

// What reaches the broker through refConn is, byte for byte, the packet
// paho would have written with the payload itself, for both QoS and for
// payloads around the threshold and past the 2- and 3-byte remaining
// lengths; small payloads and other packets pass as they are; nothing is
// left registered.
func TestRefConnWritesPahosPacketWithThePayload(t *testing.T) {
	refs := newPayloadRefs()
	cc := &captureConn{}
	c := withRefs(cc, refs)
	var want [][]byte
	for _, size := range []int{0, 10, refThreshold - 1, refThreshold, 16 << 10, 200 << 10} {
		for _, qos := range []byte{0, 1} {
			payload := bytes.Repeat([]byte{byte(size), 'p'}, size/2+1)[:size]
			stub := refs.stub(payload)
			if size >= refThreshold && len(stub) != stubLen {
				t.Fatalf("payload of %d bytes: handed to paho as %d bytes, want a %d-byte stub", size, len(stub), stubLen)
			}
			if _, err := c.Write(pahoPublish(t, "a/b", qos, 7, stub)); err != nil {
				t.Fatalf("payload of %d bytes, QoS %d: %v", size, qos, err)
			}
			want = append(want, pahoPublish(t, "a/b", qos, 7, payload))
		}
	}
	ping := []byte{0xc0, 0}
	if _, err := c.Write(ping); err != nil {
		t.Fatal(err)
	}
	want = append(want, ping)
	if len(cc.got) != len(want) {
		t.Fatalf("%d writes, want %d", len(cc.got), len(want))
	}
	for i := range want {
		if !bytes.Equal(cc.got[i], want[i]) {
			t.Errorf("write %d: %d bytes differ from paho's %d-byte packet", i, len(cc.got[i]), len(want[i]))
		}
	}
	if n := len(refs.m); n != 0 {
		t.Errorf("%d payloads still registered after their packets were written", n)
	}
}

// A stub that is not registered (written twice, or of another
// connection), or a PUBLISH written in pieces, fails the write and puts
// nothing on the wire: a stub never reaches a broker.
func TestRefConnNeverWritesAStub(t *testing.T) {
	refs := newPayloadRefs()
	cc := &captureConn{}
	c := withRefs(cc, refs)
	big := bytes.Repeat([]byte("x"), 4<<10)
	pkt := pahoPublish(t, "a/b", 1, 1, refs.stub(big))
	if _, err := c.Write(pkt); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(pkt); !errors.Is(err, errUnknownRef) {
		t.Errorf("the same stub again: %v, want %v", err, errUnknownRef)
	}
	other := newPayloadRefs()
	if _, err := c.Write(pahoPublish(t, "a/b", 1, 2, other.stub(big))); err != nil || !bytes.Contains(cc.got[len(cc.got)-1], other.nonce[:]) {
		// Another connection's stub is only bytes here (it cannot happen:
		// each connection has its own refConn); what matters is that it
		// is not resolved to this connection's payloads.
		t.Errorf("another connection's stub: %v", err)
	}
	split := pahoPublish(t, "a/b", 1, 3, refs.stub(big))
	n := len(cc.got)
	if _, err := c.Write(split[:5]); !errors.Is(err, errSplitWrite) {
		t.Errorf("a PUBLISH in pieces: %v, want %v", err, errSplitWrite)
	}
	if len(cc.got) != n {
		t.Error("a refused write put bytes on the wire")
	}
}

// resolve never panics on what it is given, and what it writes is either
// the input or a PUBLISH with the registered payload.
func FuzzRefConn(f *testing.F) {
	refs := newPayloadRefs()
	for _, qos := range []byte{0, 1, 2} {
		f.Add(pahoPublish(f, "t", qos, 9, refs.stub(bytes.Repeat([]byte("y"), 2<<10))))
	}
	f.Add([]byte{0x30, 0x02, 0x00, 0x00})
	f.Add([]byte{0x32, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Add([]byte{0xc0, 0x00})
	f.Fuzz(func(t *testing.T, p []byte) {
		r := newPayloadRefs()
		r.nonce = refs.nonce
		r.next = 0
		for i := uint64(1); i <= 3; i++ {
			r.m[i] = bytes.Repeat([]byte("z"), 2<<10)
		}
		r.wmu.Lock()
		out, err := r.resolve(p)
		r.wmu.Unlock()
		if err == nil && !bytes.Equal(out, p) && (len(out) < len(p) || out[0] != p[0]) {
			t.Fatalf("resolved %x into %x", p, out)
		}
	})
}
