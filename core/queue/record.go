package queue

import (
	"encoding/binary"
	"errors"
	"hash/crc32"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// On-disk record of the disk queue, little-endian:
//
//	u32 body length | u32 CRC-32C of body | body
//	body = u64 sequence | u8 flags (bits 0-1 QoS, bit 2 retain) | u16 topic length | topic | payload
//
// The CRC covers the sequence number, so a record left over from an older
// write at the same offset, or a torn write, is recognised as the end of
// the valid data.
const (
	recHeader   = 8
	bodyFixed   = 8 + 1 + 2
	maxTopicLen = 1<<16 - 1
	// maxBody bounds what a corrupt length field can make the reader
	// allocate; no MQTT message the gateway makes is near it.
	maxBody = 256 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	errShort   = errors.New("record cut short")
	errCorrupt = errors.New("record corrupt")
)

// recordLen is the encoded size of m.
func recordLen(m *sdk.Message) int { return recHeader + bodyFixed + len(m.Topic) + len(m.Payload) }

// appendRecord encodes m with sequence seq onto dst.
func appendRecord(dst []byte, seq uint64, m *sdk.Message) []byte {
	body := bodyFixed + len(m.Topic) + len(m.Payload)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(body))
	dst = binary.LittleEndian.AppendUint32(dst, 0) // CRC, filled below
	dst = binary.LittleEndian.AppendUint64(dst, seq)
	flags := m.QoS & 3
	if m.Retain {
		flags |= 4
	}
	dst = append(dst, flags)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(m.Topic)))
	dst = append(dst, m.Topic...)
	dst = append(dst, m.Payload...)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+recHeader:], castagnoli))
	return dst
}

// recordInfo is what the queue needs to know of a record without its
// content: where it ends, its sequence, what it counts against the limit.
type recordInfo struct {
	n    int    // encoded length
	seq  uint64 //
	size int64  // MessageSize of the message
}

// decodeRecord reads the record at the start of b. It never panics and
// never trusts a length before checking it: errShort means b ends inside
// the record, errCorrupt that the bytes are not a record. With m nil only
// the frame is checked.
func decodeRecord(b []byte, m *sdk.Message) (recordInfo, error) {
	if len(b) < recHeader {
		return recordInfo{}, errShort
	}
	body := binary.LittleEndian.Uint32(b)
	if body < bodyFixed || body > maxBody {
		return recordInfo{}, errCorrupt
	}
	if uint64(len(b)-recHeader) < uint64(body) {
		return recordInfo{}, errShort
	}
	bb := b[recHeader : recHeader+int(body)]
	if crc32.Checksum(bb, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return recordInfo{}, errCorrupt
	}
	tl := int(binary.LittleEndian.Uint16(bb[9:]))
	if bodyFixed+tl > len(bb) || bb[8]&^7 != 0 {
		return recordInfo{}, errCorrupt
	}
	info := recordInfo{n: recHeader + int(body), seq: binary.LittleEndian.Uint64(bb), size: int64(len(bb) - bodyFixed + 16)}
	if m != nil {
		m.QoS = bb[8] & 3
		m.Retain = bb[8]&4 != 0
		m.Topic = string(bb[bodyFixed : bodyFixed+tl])
		m.Payload = append([]byte(nil), bb[bodyFixed+tl:]...)
	}
	return info, nil
}
