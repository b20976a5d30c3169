package nats

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// streamSubjects returns base plus each extra subject that no other subject
// of the list already matches, in order.
func streamSubjects(base string, extra []string) []string {
	all := append([]string{base}, extra...)
	var out []string
	for i, s := range all {
		covered := false
		for j, p := range all {
			if i == j {
				continue
			}
			// Of two identical subjects keep the first; otherwise drop s
			// when another subject matches everything s matches.
			if s == p {
				if j < i {
					covered = true
				}
			} else if subjectCovers(p, s) {
				covered = true
			}
			if covered {
				break
			}
		}
		if !covered {
			out = append(out, s)
		}
	}
	return out
}

// subjectCovers reports whether every subject matched by s is matched by p.
func subjectCovers(p, s string) bool {
	pt, st := strings.Split(p, "."), strings.Split(s, ".")
	for i, t := range pt {
		if t == ">" {
			return len(st) > i
		}
		if i >= len(st) {
			return false
		}
		switch {
		case t == "*":
			if st[i] == ">" {
				return false
			}
		case t != st[i]:
			return false
		}
	}
	return len(pt) == len(st)
}

// ValidSubject reports whether subject can be a record's subject (a
// Record.Dest): dot-separated tokens, none empty, without whitespace or
// wildcards.
func ValidSubject(subject string) error { return validSubject(subject, false) }

// validSubject checks a subject token by token. Wildcards (* and >) are
// allowed in stream subjects, not in a record's subject.
func validSubject(s string, wildcards bool) error {
	if s == "" {
		return errors.New("a NATS subject is empty")
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			switch s[i] {
			case ' ', '\t', '\r', '\n', '\f', '\v':
				return fmt.Errorf("%q is not a NATS subject: it contains whitespace", s)
			}
			continue
		}
		tok := s[start:i]
		switch {
		case tok == "":
			return fmt.Errorf("%q is not a NATS subject: it has an empty token", s)
		case tok == "*" || tok == ">":
			if !wildcards {
				return fmt.Errorf("%q is not a NATS subject for records: it has a wildcard", s)
			}
			if tok == ">" && i != len(s) {
				return fmt.Errorf("%q is not a NATS subject: > is not its last token", s)
			}
		}
		start = i + 1
	}
	return nil
}

// validStreamName checks a JetStream stream name ("" is the default).
func validStreamName(name string) error {
	if strings.ContainsAny(name, ". *>/\\\t\r\n") {
		return fmt.Errorf("%q is not a JetStream stream name: it may not contain '.', '*', '>', '/', '\\' or whitespace", name)
	}
	return nil
}

// ensureStream creates the stream when missing, and otherwise checks that
// it can store what we publish, with the duplicate window we rely on.
func ensureStream(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.Stream, error) {
	want := jetstream.StreamConfig{
		Name:       cfg.Stream,
		Subjects:   streamSubjects(cfg.BaseSubject, cfg.Subjects),
		Duplicates: cfg.DuplicateWindow,
		Storage:    jetstream.FileStorage,
		Replicas:   cfg.Replicas,
	}
	st, err := js.Stream(ctx, cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		st, err = js.CreateStream(ctx, want)
		if err == nil {
			return st, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("nats: create stream %q with subjects %q: %w", cfg.Stream, want.Subjects, err)
		}
		// Created meanwhile by someone else: check theirs.
		st, err = js.Stream(ctx, cfg.Stream)
	}
	if err != nil {
		return nil, fmt.Errorf("nats: look up stream %q: %w", cfg.Stream, err)
	}
	if diffs := streamDiffs(st.CachedInfo().Config, want); len(diffs) > 0 {
		return nil, fmt.Errorf("nats: stream %q exists with other settings and was left unchanged: %s; update the stream or the configuration",
			cfg.Stream, strings.Join(diffs, "; "))
	}
	return st, nil
}

// streamDiffs lists how an existing stream falls short of want. Extra
// subjects on the existing stream are fine: other publishers may share it.
func streamDiffs(have, want jetstream.StreamConfig) []string {
	var diffs []string
	var missing []string
	for _, s := range want.Subjects {
		if !slices.ContainsFunc(have.Subjects, func(p string) bool { return p == s || subjectCovers(p, s) }) {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		diffs = append(diffs, fmt.Sprintf("subjects %q are not among the stream's subjects %q", missing, have.Subjects))
	}
	if have.Duplicates != want.Duplicates {
		diffs = append(diffs, fmt.Sprintf("duplicate_window is %v on the stream, %v configured", have.Duplicates, want.Duplicates))
	}
	if have.Replicas < want.Replicas {
		diffs = append(diffs, fmt.Sprintf("replicas is %d on the stream, %d configured", have.Replicas, want.Replicas))
	}
	if have.Storage != want.Storage {
		diffs = append(diffs, fmt.Sprintf("storage is %v on the stream, %v expected", have.Storage, want.Storage))
	}
	return diffs
}
