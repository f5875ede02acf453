package opcua

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/gopcua/opcua/ua"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// writeKinds are the built-in types a write can be encoded in (see
// variantFor), with the value kind the core checks a write against and
// the type name that bounds it (the core's integer ranges, float32).
var writeKinds = map[ua.TypeID]struct {
	kind sdk.Kind
	typ  string
}{
	ua.TypeIDBoolean: {sdk.KindBool, "bool"},
	ua.TypeIDSByte:   {sdk.KindInt, "int8"}, ua.TypeIDInt16: {sdk.KindInt, "int16"},
	ua.TypeIDInt32: {sdk.KindInt, "int32"}, ua.TypeIDInt64: {sdk.KindInt, "int64"},
	ua.TypeIDByte: {sdk.KindUint, "uint8"}, ua.TypeIDUint16: {sdk.KindUint, "uint16"},
	ua.TypeIDUint32: {sdk.KindUint, "uint32"}, ua.TypeIDUint64: {sdk.KindUint, "uint64"},
	ua.TypeIDFloat: {sdk.KindFloat, "float32"}, ua.TypeIDDouble: {sdk.KindFloat, "float64"},
	ua.TypeIDString: {sdk.KindString, "string"}, ua.TypeIDDateTime: {sdk.KindString, "string"},
	ua.TypeIDByteString: {sdk.KindString, "string"}, ua.TypeIDLocalizedText: {sdk.KindString, "string"},
}

// learnTypes gives the writable points configured without `type` the
// kind of their node's own data type, read from the server now: the core
// checks every write against the point's kind in the registry, which is
// fixed when Init returns, so it cannot wait for the first reading.
//
// It reads each node's Value and DataType attributes in one Read (the
// Value's built-in type is the encoding a write must use, and also
// resolves subtypes such as Duration or an enumeration; the DataType
// serves a node whose value is still empty). A server that cannot be
// reached is not a configuration error, as for every other input: those
// points are then registered without a kind, writes to them are refused
// until the gateway is reloaded with the server up, and a warning says to
// set `type` so as not to depend on it. Nothing is returned: what could
// not be learned is logged.
func (o *OPCUA) learnTypes(ctx context.Context) {
	var need []int
	for i, p := range o.points {
		if p.typ == "" && p.access.Subscribes() {
			need = append(need, i)
		}
	}
	if len(need) == 0 {
		return
	}
	names := func(idx []int) string {
		var n []string
		for _, i := range idx {
			n = append(n, o.points[i].name)
		}
		return strings.Join(n, ", ")
	}
	ctx, cancel := context.WithTimeout(ctx, 2*o.set.timeout)
	defer cancel()
	s, err := o.connect(ctx)
	if err != nil {
		slog.Warn("opcua: writable points without type take their node's data type from the server at start, and it "+
			"could not be reached: writes to them are refused until the gateway reloads with the server up; set type "+
			"on them (bool, int16, ..., float64, string) not to depend on it",
			"device", o.set.device, "points", names(need), "endpoint", endpointHost(o.set.endpoint), "error", err)
		return
	}
	defer s.close(ctx)
	per := max(s.maxRead/2, 1) // two attributes per node
	for start := 0; start < len(need); start += per {
		part := need[start:min(start+per, len(need))]
		req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnNeither}
		for _, i := range part {
			req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: s.ids[i], AttributeID: ua.AttributeIDValue},
				&ua.ReadValueID{NodeID: s.ids[i], AttributeID: ua.AttributeIDDataType})
		}
		rctx, cancel := context.WithTimeout(ctx, o.set.timeout)
		res, err := s.c.Read(rctx, req)
		cancel()
		if err == nil && len(res.Results) != len(req.NodesToRead) {
			err = fmt.Errorf("the server answered %d results for %d attributes", len(res.Results), len(req.NodesToRead))
		}
		if err != nil {
			slog.Warn("opcua: reading the data type of writable points without type failed: writes to them are refused "+
				"until the gateway reloads; set type on them not to depend on it",
				"device", o.set.device, "points", names(part), "error", err)
			continue
		}
		for k, i := range part {
			t, why := writeType(res.Results[2*k], res.Results[2*k+1])
			w, ok := writeKinds[t]
			if !ok {
				if why == "" {
					why = "its data type " + typeName(t) + " cannot be written"
				}
				slog.Warn("opcua: a writable point without type whose node cannot be written: writes to it are refused",
					"device", o.set.device, "point", o.points[i].name, "node", o.points[i].node.text, "reason", why)
				continue
			}
			o.points[i].kind, o.points[i].wtype = w.kind, w.typ
		}
	}
}

// writeType is a node's built-in type from its Value and DataType
// attributes, or why there is none.
func writeType(value, dataType *ua.DataValue) (ua.TypeID, string) {
	if v := value.Value; quality(value.Status) != sdk.QualityBad && v != nil && v.Type() != ua.TypeIDNull {
		if v.Has(ua.VariantArrayValues) {
			return 0, "its value is of an " + unsupported(v).Error()
		}
		return v.Type(), ""
	}
	if quality(dataType.Status) == sdk.QualityBad || dataType.Value == nil {
		return 0, "the server does not tell its data type (" + statusName(max(value.Status, dataType.Status)) + ")"
	}
	// A built-in DataType's NodeId is ns=0;i=<its TypeID>.
	if id, ok := dataType.Value.Value().(*ua.NodeID); ok && id.Namespace() == 0 && id.IntID() >= uint32(ua.TypeIDBoolean) &&
		id.IntID() <= uint32(ua.TypeIDDiagnosticInfo) {
		return ua.TypeID(id.IntID()), ""
	}
	return 0, "its value is empty and its DataType " + dataType.Value.String() + " is not a built-in type"
}

// adviseTypes runs on the first session of a plugin whose writable points
// without `type` could not learn their kind at Init (the server was not
// reachable then): their writes stay refused until a reload, and the log
// now says which `type` to set, read from the node.
func (o *OPCUA) adviseTypes(ctx context.Context, s *session) {
	for i, p := range o.points {
		if p.typ != "" || !p.access.Subscribes() || p.kind != sdk.KindNone {
			continue
		}
		t, err := o.nodeType(ctx, s, i)
		if w, ok := writeKinds[t]; err == nil && ok {
			slog.Warn("opcua: writes to a point without type are refused: the server was not reachable when the "+
				"gateway started, to tell its node's data type; reload, or set its type", "device", o.set.device,
				"point", p.name, "node", p.node.text, "data_type", typeName(t), "set", fmt.Sprintf("type = %q", w.typ))
		}
	}
}
