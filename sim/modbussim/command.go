package modbussim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// listFlag collects a repeated flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Command is `edgepipe sim modbus`: it serves a simulator until ctx is
// cancelled, printing where it listens. args are the arguments after
// "modbus":
//
//	--listen URL     tcp://HOST:PORT, rtuovertcp://HOST:PORT, rtu:///dev/ttyX, rtu://pty
//	                 (repeatable: every transport serves the same registers;
//	                 default tcp://127.0.0.1:5020)
//	--config FILE    register map (see README.md); default: the demo device
//	--print-config   print the demo configuration file and exit
func Command(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("edgepipe sim modbus", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var listen listFlag
	fs.Var(&listen, "listen", "where to serve: tcp://HOST:PORT, rtuovertcp://HOST:PORT, rtu:///dev/ttyX or rtu://pty (repeatable)")
	configPath := fs.String("config", "", "simulator configuration file (default: the demo device)")
	printConfig := fs.Bool("print-config", false, "print the demo configuration file and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if *printConfig {
		_, err := io.WriteString(stdout, DefaultConfigTOML)
		return err
	}
	cfg := DefaultConfig()
	if *configPath != "" {
		var err error
		if cfg, err = LoadConfig(*configPath); err != nil {
			return err
		}
	}
	if len(listen) == 0 {
		listen = listFlag{"tcp://127.0.0.1:5020"}
	}
	s, err := New(cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, l := range listen {
		if err := s.Listen(l); err != nil {
			return err
		}
	}
	ids := make([]int, 0, len(cfg.Units))
	for _, u := range cfg.Units {
		ids = append(ids, int(u.ID))
	}
	sort.Ints(ids)
	for _, a := range s.Addrs() {
		fmt.Fprintf(stdout, "modbus simulator: units %v on %s\n", ids, a)
	}
	<-ctx.Done()
	return nil
}
