package agent

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Registry is the point registry: every point the inputs offer, with its
// type, access and bounds, and the input that owns its device. Writes are
// checked against it and routed by it.
type Registry struct {
	// schemas and owners are parallel, grouped by device; byName indexes
	// them. A schema is the input's own (its InitResponse.Points, which
	// the instance keeps), not a copy, and a name costs a 4-byte index:
	// the registry is the gateway's largest per-point structure (it held
	// two more copies of every schema, 263 B a point; now ~65).
	schemas []*sdk.PointSchema
	owners  []*instance
	// byName indexes schemas sorted by full name ("device.point"): 4 bytes
	// a point where a map from the full names cost ~60 (the name built,
	// the entry); Lookup (a write, the API) is rare enough for a binary
	// search.
	byName []int32
	// subOnly lists points that must not be reported (access = sub), by
	// device then name; empty in the common case, which costs nothing.
	subOnly map[string]map[string]bool
}

func buildRegistry(inputs []*instance) (*Registry, sdk.ConfigErrors) {
	type offered struct {
		schema *sdk.PointSchema
		owner  *instance
	}
	var all []offered
	for _, in := range inputs {
		for i := range in.points {
			all = append(all, offered{&in.points[i], in})
		}
	}
	// Grouped by device; stable, so a device's points (and the first of
	// two inputs defining the same one) keep their order.
	sort.SliceStable(all, func(i, j int) bool { return all[i].schema.Device < all[j].schema.Device })
	r := &Registry{schemas: make([]*sdk.PointSchema, 0, len(all)), owners: make([]*instance, 0, len(all)),
		subOnly: map[string]map[string]bool{}}
	seen := make(map[string]int32, len(all)) // while building only
	var errs sdk.ConfigErrors
	for _, o := range all {
		s, in := o.schema, o.owner
		full := s.FullName()
		if i, dup := seen[full]; dup {
			errs = append(errs, sdk.ConfigError{File: in.cfg.File, Line: in.cfg.Line, Path: in.cfg.ID,
				Msg: fmt.Sprintf("point %s is also defined by %s; device names must be unique", full, r.owners[i].cfg.ID)})
			continue
		}
		seen[full] = int32(len(r.schemas))
		r.schemas = append(r.schemas, s)
		r.owners = append(r.owners, in)
		if !s.Access.Publishes() {
			if r.subOnly[s.Device] == nil {
				r.subOnly[s.Device] = map[string]bool{}
			}
			r.subOnly[s.Device][s.Name] = true
		}
	}
	r.byName = make([]int32, len(r.schemas))
	for i := range r.byName {
		r.byName[i] = int32(i)
	}
	slices.SortFunc(r.byName, func(a, b int32) int { return compareFull(r.schemas[a], r.schemas[b].Device, r.schemas[b].Name) })
	return r, errs
}

// compareFull compares s's full name with device+"."+name, building
// neither.
func compareFull(s *sdk.PointSchema, device, name string) int {
	return cmpJoined(s.Device, s.Name, device, name)
}

// cmpKey compares dev+"."+name with key, bytewise (the order cmpJoined
// sorts in), without building the joined name. Device names may hold dots:
// the whole key is compared, not split.
func cmpKey(dev, name, key string) int {
	n := min(len(dev), len(key))
	if c := strings.Compare(dev[:n], key[:n]); c != 0 {
		return c
	}
	if len(key) <= len(dev) {
		return 1 // key is a prefix of the joined name
	}
	if key[len(dev)] != '.' {
		return int('.') - int(key[len(dev)])
	}
	return strings.Compare(name, key[len(dev)+1:])
}

// cmpJoined compares a1+"."+a2 with b1+"."+b2 byte by byte.
func cmpJoined(a1, a2, b1, b2 string) int {
	at := func(x1, x2 string, i int) (byte, bool) {
		switch {
		case i < len(x1):
			return x1[i], true
		case i == len(x1):
			return '.', true
		case i-len(x1)-1 < len(x2):
			return x2[i-len(x1)-1], true
		}
		return 0, false
	}
	for i := 0; ; i++ {
		x, okx := at(a1, a2, i)
		y, oky := at(b1, b2, i)
		switch {
		case !okx && !oky:
			return 0
		case !okx:
			return -1
		case !oky:
			return 1
		case x != y:
			return int(x) - int(y)
		}
	}
}

// Schemas lists every point, grouped by device: a copy, for the console,
// the API and the checks (not the poll path).
func (r *Registry) Schemas() []sdk.PointSchema {
	if r == nil {
		return nil
	}
	out := make([]sdk.PointSchema, len(r.schemas))
	for i, s := range r.schemas {
		out[i] = *s
	}
	return out
}

// Lookup finds a point by its full name.
func (r *Registry) Lookup(full string) (sdk.PointSchema, *instance, bool) {
	if r == nil {
		return sdk.PointSchema{}, nil, false
	}
	k, ok := slices.BinarySearchFunc(r.byName, full, func(i int32, full string) int {
		return cmpKey(r.schemas[i].Device, r.schemas[i].Name, full)
	})
	if !ok {
		return sdk.PointSchema{}, nil, false
	}
	i := r.byName[k]
	return *r.schemas[i], r.owners[i], true
}

// filterUnpublished drops points an input reported although their access
// is sub: only pub and pubsub points are reported to the server.
func (r *Registry) filterUnpublished(b *sdk.Batch) {
	if r == nil || len(r.subOnly) == 0 {
		return
	}
	drop := r.subOnly[b.Device]
	if drop == nil {
		return
	}
	kept := b.Points[:0]
	for _, p := range b.Points {
		if !drop[p.Name] {
			kept = append(kept, p)
		}
	}
	b.Points = kept
}
