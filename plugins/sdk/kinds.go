package sdk

// KindsOf lists the pipeline roles p serves: KindInput for an Input or a
// StreamingInput, KindProcessor for a Processor, KindOutput for an Output.
// A gRPC client knows the remote plugin's roles after Init (also after an
// Init that failed with configuration errors), so the core can refuse a
// binary wired as the wrong kind ([[inputs.external]] running a
// processor) at `check` instead of failing every call with
// "Unimplemented". known is false for a plugin built with an SDK that did
// not say; the core then trusts the configuration.
func KindsOf(p any) (kinds []PluginKind, known bool) {
	if k, ok := p.(kinder); ok {
		return k.Kinds()
	}
	return localKinds(p), true
}

// kinder is implemented by gRPC clients and supervisors, which learn the
// remote plugin's roles in Init.
type kinder interface {
	Kinds() ([]PluginKind, bool)
}

func localKinds(p any) []PluginKind {
	var out []PluginKind
	_, in := p.(Input)
	_, st := p.(StreamingInput)
	if in || st {
		out = append(out, KindInput)
	}
	if _, ok := p.(Processor); ok {
		out = append(out, KindProcessor)
	}
	if _, ok := p.(Output); ok {
		out = append(out, KindOutput)
	}
	return out
}

// Serves reports whether p serves kind (true when p's roles are unknown,
// see KindsOf).
func Serves(p any, kind PluginKind) bool {
	kinds, known := KindsOf(p)
	if !known {
		return true
	}
	for _, k := range kinds {
		if k == kind {
			return true
		}
	}
	return false
}
