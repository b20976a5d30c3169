package main

import (
	"flag"
	"io"
	"os"
	"strings"
)

// configFlags are the flags of the commands that read a configuration file.
type configFlags struct {
	file      string
	sets      setFlags
	logLevel  string
	logFormat string
	httpAddr  string
	fs        *flag.FlagSet
}

// setFlags collects repeated --set key=value flags.
type setFlags []string

func (s *setFlags) String() string     { return strings.Join(*s, ",") }
func (s *setFlags) Set(v string) error { *s = append(*s, v); return nil }

func newFlagSet(name string, w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("ingest "+name, flag.ContinueOnError)
	fs.SetOutput(w)
	return fs
}

func (cf *configFlags) register(fs *flag.FlagSet) {
	cf.fs = fs
	fs.StringVar(&cf.file, "c", "", "configuration `FILE` (or INGEST_CONFIG)")
	fs.StringVar(&cf.file, "config", "", "configuration `FILE` (same as -c)")
	fs.Var(&cf.sets, "set", "set a configuration key, e.g. --set sink.type=kafka (repeatable)")
	fs.StringVar(&cf.logLevel, "log-level", "", "log.level: debug, info, warn, error")
	fs.StringVar(&cf.logFormat, "log-format", "", "log.format: text or json")
	fs.StringVar(&cf.httpAddr, "http-addr", "", "http.addr: metrics and health listen address (\"\" disables the HTTP server)")
}

// overrides returns the keys set by flags, in the order they were given.
func (cf *configFlags) overrides() ([]Override, error) {
	var out []Override
	set := map[string]bool{}
	cf.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["log-level"] {
		out = append(out, Override{Key: "log.level", Value: cf.logLevel, Origin: "flag --log-level"})
	}
	if set["log-format"] {
		out = append(out, Override{Key: "log.format", Value: cf.logFormat, Origin: "flag --log-format"})
	}
	if set["http-addr"] {
		out = append(out, Override{Key: "http.addr", Value: cf.httpAddr, Origin: "flag --http-addr"})
	}
	for _, s := range cf.sets {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, usagef("--set %q: expected key=value, e.g. --set sink.type=kafka", s)
		}
		// Accept streams[0].since as well as streams.0.since.
		k = strings.NewReplacer("[", ".", "]", "").Replace(k)
		out = append(out, Override{Key: k, Value: v, Origin: "flag --set " + k})
	}
	return out, nil
}

// load reads the configuration named by -c or INGEST_CONFIG; none is a usage error.
func (cf *configFlags) load() (*Config, error) {
	file := cf.file
	if file == "" {
		file = os.Getenv(envConfigFile)
	}
	if file == "" {
		return nil, usagef("no configuration: pass -c FILE or set %s (or try `ingest demo`, which needs none)", envConfigFile)
	}
	ov, err := cf.overrides()
	if err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(LoadOptions{File: file, Overrides: ov})
	if err != nil {
		return nil, err
	}
	registerSecrets(cfg.secrets()...)
	return cfg, nil
}

// parseFlags parses args and rejects positional leftovers.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return err
		}
		return usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// flagSet reports whether the flag name was given.
func flagSet(fs *flag.FlagSet, name string) bool {
	found := false
	fs.Visit(func(f *flag.Flag) { found = found || f.Name == name })
	return found
}
