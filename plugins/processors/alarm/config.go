package alarm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/edgepipe/edgepipe/plugins/sdk"
)

// Init decodes the rules, compiles their expressions against the point
// registry and restores the alarms an earlier run left raised. Every
// mistake is reported at its line, all in one pass.
func (a *Alarm) Init(_ context.Context, req *sdk.InitRequest) (*sdk.InitResponse, error) {
	var cfg Config
	src, err := sdk.DecodeConfig(req, &cfg)
	if err != nil {
		return nil, err
	}
	registry := make(map[string]sdk.PointSchema, len(req.Points))
	devices := map[string]bool{}
	for _, s := range req.Points {
		registry[s.FullName()] = s
		devices[s.Device] = true
	}
	a.rules, a.byName = nil, map[string]*rule{}
	a.slots = map[string]*device{}
	a.waiting = nil
	a.points = map[string]any{}
	a.env = map[string]any{"value": nil, "prev": nil, "quality": "good", "points": a.points}
	var errs sdk.ConfigErrors
	names := map[string]bool{}
	for i, rc := range cfg.Rules {
		r, es := a.compileRule(src, i, rc, registry, names)
		names[rc.Name] = true
		errs = append(errs, es...)
		if r == nil {
			continue
		}
		a.rules = append(a.rules, r)
		a.byName[r.name] = r
	}
	if len(errs) > 0 {
		return nil, errs
	}
	a.state = req.State
	if a.state == nil {
		a.state = sdk.NewMemState(nil)
	}
	a.restore()
	return &sdk.InitResponse{}, nil
}

// compileRule checks and compiles rule i; it returns nil with the errors
// found when the rule is unusable.
func (a *Alarm) compileRule(src *sdk.ConfigSource, i int, rc RuleConfig, registry map[string]sdk.PointSchema, names map[string]bool) (*rule, sdk.ConfigErrors) {
	var errs sdk.ConfigErrors
	at := func(key string) string { return fmt.Sprintf("rules[%d].%s", i, key) }
	errorf := func(key, format string, args ...any) {
		errs = append(errs, src.Errorf(at(key), format, args...))
	}
	var err error
	r := &rule{name: rc.Name, point: rc.Point, camera: rc.Camera, delayMS: rc.Delay.D().Milliseconds()}
	switch {
	case rc.Name == "":
		errorf("name", "is missing: acknowledgements and reports name the rule")
	case names[rc.Name]:
		errorf("name", "%q is used by another rule", rc.Name)
	}
	r.level = strings.ToLower(rc.Level)
	switch r.level {
	case "":
		r.level = DefaultLevel
	case "info", "warning", "critical":
	default:
		errorf("level", "%q: want info, warning or critical", rc.Level)
	}
	if r.msg, err = parseMessage(rc.Message); err != nil {
		errorf("message", "%v", err)
	}
	schema, ok := registry[rc.Point]
	switch {
	case rc.Point == "":
		errorf("point", "is missing: the \"device.point\" whose readings the rule watches")
	case !ok:
		errorf("point", "no point %q among the inputs' points", rc.Point)
	case !schema.Access.Publishes():
		errorf("point", "point %q is not read (access = %s): the rule would never be evaluated", rc.Point, schema.Access)
	}
	if rc.Camera != "" {
		if _, ok := registry[rc.Camera+"."+capturePoint]; !ok {
			errorf("camera", "no camera input named %q (no point %s.%s)", rc.Camera, rc.Camera, capturePoint)
		}
	}
	if rc.Condition == "" {
		errorf("condition", "is missing")
	}
	var refs []string
	compile := func(key, code string) *vm.Program {
		if code == "" {
			return nil
		}
		p, names, err := compileExpr(code, schema.Kind, func(n string) (sdk.Kind, bool) {
			s, ok := registry[n]
			return s.Kind, ok
		})
		if err != nil {
			errorf(key, "%v", err)
			return nil
		}
		for _, n := range names {
			s, ok := registry[n]
			switch {
			case !ok:
				errorf(key, "points[%q]: no such point among the inputs' points", n)
			case !s.Access.Publishes():
				errorf(key, "points[%q] is not read (access = %s)", n, s.Access)
			default:
				refs = append(refs, n)
			}
		}
		return p
	}
	r.cond = compile("condition", rc.Condition)
	r.clear = compile("clear", rc.Clear)
	if len(errs) > 0 {
		return nil, errs
	}
	r.slot = a.slot(schema)
	r.slot.rules = append(r.slot.rules, r)
	sort.Strings(refs)
	for i, n := range refs {
		ref := a.slot(registry[n])
		ref.named = true
		if (i == 0 || refs[i-1] != n) && n != rc.Point {
			r.refs = append(r.refs, ref)
		}
	}
	return r, nil
}

// slot returns the slot of a point, making it on first use.
func (a *Alarm) slot(s sdk.PointSchema) *slot {
	dev := a.slots[s.Device]
	if dev == nil {
		dev = &device{byName: map[string]*slot{}}
		a.slots[s.Device] = dev
	}
	sl := dev.byName[s.Name]
	if sl == nil {
		sl = &slot{full: s.FullName()}
		dev.byName[s.Name] = sl
	}
	return sl
}

// exprType is the type expressions see for a point of kind k (see
// boxValue); a point of unknown kind is untyped, checked at run time.
func exprType(k sdk.Kind) types.Type {
	switch k {
	case sdk.KindBool:
		return types.Bool
	case sdk.KindInt, sdk.KindUint:
		return types.Int64
	case sdk.KindFloat:
		return types.Float64
	case sdk.KindString:
		return types.String
	}
	return types.Any
}

// envFor is the type-checking environment of a rule on a point of kind k:
// value and prev have the point's type, and so does each points["dev.pt"]
// the expression names (kindOf gives a named point's kind), so that
// `value > "x"` on a number, `value % 40` on a float or `value && true` on
// an integer is an error at load. The shape is a map, as at run time,
// which the engine reads fastest.
func envFor(k sdk.Kind, names []string, kindOf func(string) (sdk.Kind, bool)) types.Map {
	v := exprType(k)
	points := types.Map{}
	for _, n := range names {
		// An unknown name stays untyped here: the caller reports it
		// against the registry, with a clearer message than the engine's.
		points[n] = types.Any
		if pk, ok := kindOf(n); ok {
			points[n] = exprType(pk)
		}
	}
	return types.Map{"value": v, "prev": v, "quality": types.String, "points": points}
}

// bitFunction is bit(x, n): whether bit n (0 = least significant) of the
// integer x is set, the usual test of a status word (`bit(value, 3)`
// rather than `bitand(value, 8) != 0`).
var bitFunction = expr.Function("bit", func(args ...any) (any, error) {
	x, okx := toInt(args[0])
	n, okn := toInt(args[1])
	if !okx || !okn {
		return nil, fmt.Errorf("bit(%v, %v): want an integer and a bit number", args[0], args[1])
	}
	if n < 0 || n > 63 {
		return nil, fmt.Errorf("bit(%d, %d): the bit number must be 0 to 63", x, n)
	}
	return x&(1<<n) != 0, nil
}, new(func(int64, int) bool), new(func(int, int) bool))

func toInt(v any) (int64, bool) {
	switch v := v.(type) {
	case int:
		return int64(v), true
	case int64:
		return v, true
	}
	return 0, false
}

// maxExprNodes bounds an expression's size: conditions are comparisons,
// and a bound keeps a pathological configuration from slowing the load.
const maxExprNodes = 1000

// compileExpr compiles a condition to a program returning a bool and lists
// the point names it reads through points["..."]. Those must be string
// literals: a computed name could not be checked against the registry at
// load, and a typo would then only show as a rule that never fires.
func compileExpr(code string, k sdk.Kind, kindOf func(string) (sdk.Kind, bool)) (p *vm.Program, names []string, err error) {
	defer func() {
		// The engine is not expected to panic on any source, but the
		// configuration is user text: turn a panic into a config error.
		if v := recover(); v != nil {
			p, names, err = nil, nil, fmt.Errorf("does not compile: %v", v)
		}
	}()
	tree, err := parser.Parse(code)
	if err != nil {
		return nil, nil, fmt.Errorf("does not compile: %s", exprError(err))
	}
	v := &pointRefs{}
	ast.Walk(&tree.Node, v)
	if v.bad() {
		return nil, nil, errors.New(`points must be indexed by a quoted point name, e.g. points["plc1.temperature"]`)
	}
	p, err = expr.Compile(code, expr.Env(envFor(k, v.names, kindOf)), bitFunction, expr.AsBool(), expr.MaxNodes(maxExprNodes))
	if err != nil {
		return nil, nil, fmt.Errorf("does not compile: %s", exprError(err))
	}
	return p, v.names, nil
}

// exprError formats an expression engine error on one line with its place
// in the expression.
func exprError(err error) string {
	var fe *file.Error
	if errors.As(err, &fe) {
		if fe.Line > 1 {
			return fmt.Sprintf("%s (expression line %d, column %d)", fe.Message, fe.Line, fe.Column+1)
		}
		return fmt.Sprintf("%s (column %d)", fe.Message, fe.Column+1)
	}
	return oneLine(err)
}

// pointRefs collects the string keys of points[...] and notes any other
// use of points.
type pointRefs struct {
	names []string
	uses  []*ast.IdentifierNode // every identifier "points"
	keyed map[*ast.IdentifierNode]bool
}

func (v *pointRefs) Visit(n *ast.Node) {
	switch m := (*n).(type) {
	case *ast.MemberNode:
		id, isID := m.Node.(*ast.IdentifierNode)
		if !isID || id.Value != "points" {
			return
		}
		if s, isStr := m.Property.(*ast.StringNode); isStr {
			v.names = append(v.names, s.Value)
			if v.keyed == nil {
				v.keyed = map[*ast.IdentifierNode]bool{}
			}
			v.keyed[id] = true
		}
	case *ast.IdentifierNode:
		if m.Value == "points" {
			v.uses = append(v.uses, m)
		}
	}
}

// bad reports a use of points other than points["literal"].
func (v *pointRefs) bad() bool {
	for _, id := range v.uses {
		if !v.keyed[id] {
			return true
		}
	}
	return false
}
