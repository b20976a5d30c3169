package main

import (
	"os"
	"path/filepath"
)

// pathKeys are the keys that name a file or directory. A relative value from the
// file (or a default) is resolved against the configuration file's directory,
// so that the daemon finds its checkpoints whichever directory it starts in; a
// relative value from a variable or a flag, against the working directory.
func (c *Config) pathKeys() map[string]*string {
	return map[string]*string{
		"checkpoint.dir":             &c.Checkpoint.Dir,
		"sink.file.path":             &c.Sink.File.Path,
		"sink.nats.embedded_dir":     &c.Sink.NATS.EmbeddedDir,
		"sink.nats.credentials_file": &c.Sink.NATS.CredentialsFile,
		"sink.nats.tls.ca_file":      &c.Sink.NATS.TLS.CAFile,
		"sink.nats.tls.cert_file":    &c.Sink.NATS.TLS.CertFile,
		"sink.nats.tls.key_file":     &c.Sink.NATS.TLS.KeyFile,
		"sink.kafka.tls.ca_file":     &c.Sink.Kafka.TLS.CAFile,
		"sink.kafka.tls.cert_file":   &c.Sink.Kafka.TLS.CertFile,
		"sink.kafka.tls.key_file":    &c.Sink.Kafka.TLS.KeyFile,
	}
}

// resolvePaths makes every path key absolute: against base when the value came
// from the file or the defaults, against the working directory when a variable
// or a flag set it. base "" leaves the file's relative values as they are.
func (c *Config) resolvePaths(base string, origins map[string]string) {
	c.baseDir = base
	for key, p := range c.pathKeys() {
		if *p == "" || filepath.IsAbs(*p) {
			continue
		}
		if _, fromEnvOrFlag := origins[key]; fromEnvOrFlag {
			if abs, err := filepath.Abs(*p); err == nil {
				*p = abs
			}
			continue
		}
		if base != "" {
			*p = filepath.Join(base, *p)
		}
	}
}

// configBaseDir is the absolute directory of the configuration file, or "" when
// the configuration was not read from a file.
func configBaseDir(opts LoadOptions) string {
	if opts.BaseDir != "" {
		return opts.BaseDir
	}
	if opts.File == "" || opts.Data != nil {
		return ""
	}
	dir, err := filepath.Abs(filepath.Dir(opts.File))
	if err != nil {
		if wd, werr := os.Getwd(); werr == nil {
			return wd
		}
		return ""
	}
	return dir
}
