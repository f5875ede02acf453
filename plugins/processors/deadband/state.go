package deadband

import (
	"encoding/binary"
	"slices"
	"strconv"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// How the memory is persisted, and why this way.
//
// Over gRPC every changed key travels back with the response, and the core
// writes a plugin's state file at most once a second. Shards are therefore
// saved at most every persistEveryMs (and at Close): at 10 polls a second
// of 1000 changing points, saving on every call cost more than the
// deadband itself when isolated. A crash forgets at most that last second
// of reports, which can only mean a point reported once more after the
// restart (or a change of up to twice the band hidden until the next
// period), never a point lost for good.
//
// One key per point would make thousands of keys in that file; one key per
// device would re-encode and ship a whole device when a single point of it
// was reported. So points are kept in shards of shardSize entries per
// device, key "v1/<device>/<shard>", and a shard is rewritten only when one
// of its points was reported since the last save: the cost follows what
// was reported, not the size of the plant.
const (
	persistEveryMs = 1000
	shardSize      = 128
	statePrefix    = "v1/"
	stateV1        = 1
)

func shardKey(device string, shard int) string {
	return statePrefix + device + "/" + strconv.Itoa(shard)
}

// persist writes the shards changed since the last call.
func (d *Deadband) persist() {
	for _, dev := range d.dirty {
		for s, dirty := range dev.shards {
			if !dirty {
				continue
			}
			dev.shards[s] = false
			d.enc = d.encodeShard(d.enc[:0], dev, s)
			for len(dev.keys) <= s {
				dev.keys = append(dev.keys, shardKey(dev.name, len(dev.keys)))
			}
			d.state.Set(dev.keys[s], d.enc)
		}
		dev.listed = false
	}
	clear(d.dirty)
	d.dirty = d.dirty[:0]
}

// encodeShard writes the reported entries of one shard:
// version byte, then per entry: uvarint name length, name, quality, kind,
// value (uvarint length + bytes for strings, 8 bytes little endian
// otherwise), varint time.
func (d *Deadband) encodeShard(dst []byte, dev *device, s int) []byte {
	dst = append(dst, stateV1)
	end := min((s+1)*shardSize, len(dev.entries))
	for _, e := range dev.entries[s*shardSize : end] {
		if !e.matched || !e.seen {
			continue
		}
		dst = binary.AppendUvarint(dst, uint64(len(e.name)))
		dst = append(dst, e.name...)
		dst = append(dst, byte(e.quality), byte(e.last.Kind()))
		if e.last.Kind() == sdk.KindString {
			str := e.last.StringValue()
			dst = binary.AppendUvarint(dst, uint64(len(str)))
			dst = append(dst, str...)
		} else {
			dst = binary.LittleEndian.AppendUint64(dst, e.last.Bits())
		}
		dst = binary.AppendVarint(dst, e.at)
	}
	return dst
}

type savedEntry struct {
	name    string
	quality sdk.Quality
	value   sdk.Value
	at      int64
}

// decodeShard reads what encodeShard wrote. A damaged or unknown shard
// yields what could be read before the damage: the worst outcome is a
// point reported once more, never a crash.
func decodeShard(b []byte) []savedEntry {
	if len(b) == 0 || b[0] != stateV1 {
		return nil
	}
	b = b[1:]
	var out []savedEntry
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	for len(b) > 0 {
		var e savedEntry
		var ok bool
		if e.name, ok = str(); !ok || len(b) < 2 {
			return out
		}
		e.quality, b = sdk.Quality(b[0]), b[1:]
		kind := sdk.Kind(b[0])
		b = b[1:]
		if kind > sdk.KindString {
			return out
		}
		if kind == sdk.KindString {
			s, ok := str()
			if !ok {
				return out
			}
			e.value = sdk.String(s)
		} else {
			if len(b) < 8 {
				return out
			}
			e.value = sdk.FromBits(kind, binary.LittleEndian.Uint64(b), "")
			b = b[8:]
		}
		at, k := binary.Varint(b)
		if k <= 0 {
			return out
		}
		e.at, b = at, b[k:]
		out = append(out, e)
	}
	return out
}

// restore rebuilds the memory from the state. Entries are put back in
// shard order so that each lands at the index it had; when that is not
// possible (points no longer matched by the globs, a damaged shard) the
// device is rewritten whole and shards that no longer exist are deleted.
func (d *Deadband) restore() {
	type shard struct {
		key string
		n   int
	}
	byDevice := map[string][]shard{}
	for _, k := range d.state.Keys() {
		rest, ok := strings.CutPrefix(k, statePrefix)
		if !ok {
			continue
		}
		i := strings.LastIndexByte(rest, '/')
		if i < 0 {
			d.state.Set(k, nil)
			continue
		}
		n, err := strconv.Atoi(rest[i+1:])
		if err != nil || n < 0 {
			d.state.Set(k, nil)
			continue
		}
		byDevice[rest[:i]] = append(byDevice[rest[:i]], shard{k, n})
	}
	for name, shards := range byDevice {
		slices.SortFunc(shards, func(a, b shard) int { return a.n - b.n })
		dev := d.device(name)
		exact := true
		for _, sh := range shards {
			b, _ := d.state.Get(sh.key)
			saved := decodeShard(b)
			if len(dev.entries) != sh.n*shardSize {
				exact = false
			}
			for _, s := range saved {
				i, dup := dev.index[s.name]
				if !dup {
					i = dev.add(d, s.name)
				} else {
					exact = false
				}
				e := dev.entries[i]
				if !e.matched {
					exact = false
					continue
				}
				if e.seen && e.at >= s.at {
					continue // a duplicate older than what we hold
				}
				e.seen, e.quality, e.last, e.at = true, s.quality, s.value, s.at
			}
		}
		if exact {
			continue
		}
		for _, sh := range shards {
			d.state.Set(sh.key, nil)
		}
		for _, e := range dev.entries {
			if e.seen {
				dev.markDirty(d, e.idx)
			}
		}
	}
}
