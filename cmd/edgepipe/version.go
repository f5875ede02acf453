package main

import (
	"runtime/debug"
)

// Stamped by the release command (packaging/): go build -ldflags
// "-X main.version=1.2.3 -X main.commit=abc1234". An unstamped build
// (go build, go install) falls back to what the Go toolchain recorded in
// the binary: the module version for `go install ...@v1.2.3`, and the VCS
// revision for a build from a checkout, which needs -buildvcs=true where
// GOFLAGS defaults it off.
var (
	version = ""
	commit  = ""
)

// buildVersion returns the version and commit to show: the stamped ones,
// else the module's build information, else "dev" and "unknown". A build
// from a checkout with uncommitted changes gets "-dirty" after its commit.
func buildVersion() (ver, rev string) {
	info, ok := debug.ReadBuildInfo()
	return versionFrom(version, commit, info, ok)
}

func versionFrom(stampedVersion, stampedCommit string, info *debug.BuildInfo, ok bool) (ver, rev string) {
	ver, rev = stampedVersion, stampedCommit
	if ok && ver == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		ver = info.Main.Version
	}
	if ok && rev == "" {
		var modified bool
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" && modified {
			rev += "-dirty"
		}
	}
	if ver == "" {
		ver = "dev"
	}
	if rev == "" {
		rev = "unknown"
	}
	return ver, rev
}

// versionString is "1.2.3 (commit abc1234)" for logs.
func versionString() string {
	v, r := buildVersion()
	return v + " (commit " + r + ")"
}
