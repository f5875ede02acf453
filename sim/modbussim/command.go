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
//	--baud-rate N, --data-bits N, --parity none|even|odd, --stop-bits N
//	                 the line of rtu:///dev/... ports, as inputs.modbus's keys
//	                 (default 9600 8N1, the input's default)
//	--config FILE    register map (see README.md); default: the demo device
//	--print-config   print the demo configuration file and exit
func Command(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("edgepipe sim modbus", flag.ContinueOnError)
	fs.SetOutput(stdout)
	var listen listFlag
	fs.Var(&listen, "listen", "where to serve: tcp://HOST:PORT, rtuovertcp://HOST:PORT, rtu:///dev/ttyX or rtu://pty (repeatable)")
	line := DefaultLine
	fs.IntVar(&line.BaudRate, "baud-rate", line.BaudRate, "rtu:///dev/... ports: baud rate (inputs.modbus baud_rate)")
	fs.IntVar(&line.DataBits, "data-bits", line.DataBits, "rtu:///dev/... ports: data bits, 5-8 (data_bits)")
	fs.StringVar(&line.Parity, "parity", line.Parity, "rtu:///dev/... ports: none, even or odd (parity)")
	fs.IntVar(&line.StopBits, "stop-bits", line.StopBits, "rtu:///dev/... ports: 1 or 2 (stop_bits)")
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
		var err error
		path, serialPort := strings.CutPrefix(l, "rtu://")
		switch {
		case DeprecatedRTUOptions(l):
			fmt.Fprintf(stdout, "modbus simulator: %s: serial options in the URL are deprecated; write it as inputs.modbus does, rtu://%s, with --baud-rate, --data-bits, --parity and --stop-bits\n",
				l, strings.SplitN(path, "?", 2)[0])
			err = s.Listen(l)
		case serialPort && path != "pty":
			err = s.ListenRTU(path, line)
		default:
			err = s.Listen(l)
		}
		if err != nil {
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
