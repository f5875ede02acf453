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
	schemas []sdk.PointSchema
	byName  map[string]registered // "device.point"
	// subOnly lists points that must not be reported (access = sub), by
	// device then name; empty in the common case, which costs nothing.
	subOnly map[string]map[string]bool
}

type registered struct {
	schema sdk.PointSchema
	owner  *instance
}

func buildRegistry(inputs []*instance) (*Registry, sdk.ConfigErrors) {
	r := &Registry{byName: map[string]registered{}, subOnly: map[string]map[string]bool{}}
	var errs sdk.ConfigErrors
	for _, in := range inputs {
		for _, s := range in.points {
			full := s.FullName()
			if prev, dup := r.byName[full]; dup {
				errs = append(errs, sdk.ConfigError{File: in.cfg.File, Line: in.cfg.Line, Path: in.cfg.ID,
					Msg: fmt.Sprintf("point %s is also defined by %s; device names must be unique", full, prev.owner.cfg.ID)})
				continue
			}
			r.byName[full] = registered{schema: s, owner: in}
			r.schemas = append(r.schemas, s)
			if !s.Access.Publishes() {
				if r.subOnly[s.Device] == nil {
					r.subOnly[s.Device] = map[string]bool{}
				}
				r.subOnly[s.Device][s.Name] = true
			}
		}
	}
	sort.SliceStable(r.schemas, func(i, j int) bool { return r.schemas[i].Device < r.schemas[j].Device })
	return r, errs
}

// Schemas lists every point, grouped by device.
func (r *Registry) Schemas() []sdk.PointSchema {
	if r == nil {
		return nil
	}
	return r.schemas
}

// Lookup finds a point by its full name.
func (r *Registry) Lookup(full string) (sdk.PointSchema, *instance, bool) {
	e, ok := r.byName[full]
	return e.schema, e.owner, ok
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
