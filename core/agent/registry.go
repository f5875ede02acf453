package agent

import (
	"fmt"
	"sort"

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
	byName  map[string]int32 // "device.point"
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
		byName: make(map[string]int32, len(all)), subOnly: map[string]map[string]bool{}}
	var errs sdk.ConfigErrors
	for _, o := range all {
		s, in := o.schema, o.owner
		full := s.FullName()
		if i, dup := r.byName[full]; dup {
			errs = append(errs, sdk.ConfigError{File: in.cfg.File, Line: in.cfg.Line, Path: in.cfg.ID,
				Msg: fmt.Sprintf("point %s is also defined by %s; device names must be unique", full, r.owners[i].cfg.ID)})
			continue
		}
		r.byName[full] = int32(len(r.schemas))
		r.schemas = append(r.schemas, s)
		r.owners = append(r.owners, in)
		if !s.Access.Publishes() {
			if r.subOnly[s.Device] == nil {
				r.subOnly[s.Device] = map[string]bool{}
			}
			r.subOnly[s.Device][s.Name] = true
		}
	}
	return r, errs
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
	i, ok := r.byName[full]
	if !ok {
		return sdk.PointSchema{}, nil, false
	}
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
