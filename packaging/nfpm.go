package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// Where the package puts things. The unit in etc/ names BinPath.
const (
	BinPath    = "/usr/bin/edgepipe"
	UnitPath   = "/usr/lib/systemd/system/edgepipe.service"
	ConfigDir  = "/etc/edgepipe"
	ConfigPath = "/etc/edgepipe/edgepipe.toml"
	StateDir   = "/var/lib/edgepipe"
	// bash-completion loads it on demand.
	CompletionPath = "/usr/share/bash-completion/completions/edgepipe"
)

// info describes the package for nfpm. The configuration is readable by
// group edgepipe, which scripts/setup.sh creates before the files are
// unpacked and fixes again after (the .deb and .rpm run it as both their
// pre- and post-install script).
func (r release) info(arch, bin, completion string) *nfpm.Info {
	src := func(p string) string { return filepath.Join(r.Root, p) }
	owned := func(mode os.FileMode, owner, group string) *files.ContentFileInfo {
		return &files.ContentFileInfo{Mode: mode, Owner: owner, Group: group}
	}
	setup := src("packaging/scripts/setup.sh")
	return nfpm.WithDefaults(&nfpm.Info{
		Name:        "edgepipe",
		Arch:        arch,
		Platform:    "linux",
		Version:     r.Version,
		Maintainer:  "edgepipe maintainers <maintainers@edgepipe.invalid>",
		Description: "Industrial edge gateway: Modbus, serial and camera devices to MQTT (FBox MQTT1.1) and back",
		Homepage:    "https://github.com/edgepipe/edgepipe",
		License:     "Apache-2.0",
		Section:     "net",
		Priority:    "optional",
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				{Source: bin, Destination: BinPath, FileInfo: owned(0o755, "root", "root")},
				{Source: src("etc/edgepipe.service"), Destination: UnitPath, FileInfo: owned(0o644, "root", "root")},
				{Destination: ConfigDir, Type: files.TypeDir, FileInfo: owned(0o750, "root", "edgepipe")},
				{Source: src("etc/edgepipe.toml"), Destination: ConfigPath, Type: files.TypeConfigNoReplace, FileInfo: owned(0o640, "root", "edgepipe")},
				{Destination: StateDir, Type: files.TypeDir, FileInfo: owned(0o750, "edgepipe", "edgepipe")},
				{Source: completion, Destination: CompletionPath, FileInfo: owned(0o644, "root", "root")},
				{Source: src("LICENSE"), Destination: "/usr/share/doc/edgepipe/LICENSE", FileInfo: owned(0o644, "root", "root")},
				{Source: src("README.md"), Destination: "/usr/share/doc/edgepipe/README.md", FileInfo: owned(0o644, "root", "root")},
			},
			Scripts: nfpm.Scripts{PreInstall: setup, PostInstall: setup},
		},
	})
}

// pack writes one package (format "deb" or "rpm") and returns its path.
func (r release) pack(format, arch, bin, completion string) (string, error) {
	p, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	info := r.info(arch, bin, completion)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	path := filepath.Join(r.Out, p.ConventionalFileName(info))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := p.Package(info, f); err != nil {
		f.Close()
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return path, f.Close()
}
